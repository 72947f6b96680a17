from t2d_monai.utils.args import comma_list


def test_comma_list():
    assert comma_list(None) == []
    assert comma_list("a, b,,c ") == ["a", "b", "c"]
    assert comma_list(("x.json", " y.json", "")) == ["x.json", "y.json"]
    assert comma_list([1, 2]) == ["1", "2"]

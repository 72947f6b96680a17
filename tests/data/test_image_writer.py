from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import SaveImage

from t2d_monai.data import AtomicNibabelWriter


@pytest.mark.parametrize(
    "shape, written",
    [((1, 8, 6, 1), (8, 6, 1)), ((1, 8, 1, 5), (8, 1, 5)), ((1, 1, 6, 5), (1, 6, 5)), ((1, 8, 6, 5), (8, 6, 5)),
     ((2, 8, 6, 1), (8, 6, 1, 2))],
)
def test_only_the_channel_is_removed(tmp_path, shape, written):
    affine = torch.diag(torch.tensor([0.8, 0.9, 2.5, 1.0], dtype=torch.float64))
    img = MetaTensor(torch.arange(np.prod(shape), dtype=torch.float32).reshape(shape), affine=affine)
    img.meta["filename_or_obj"] = "case.nii.gz"
    SaveImage(output_dir=str(tmp_path), output_postfix="seg", separate_folder=False, writer=AtomicNibabelWriter)(img)
    out = nib.load(tmp_path / "case_seg.nii.gz")
    assert out.shape == written
    np.testing.assert_allclose(out.affine, affine.numpy())
    data = np.asarray(out.dataobj)
    np.testing.assert_array_equal(data, np.moveaxis(img.numpy(), 0, -1).reshape(written))



def test_interrupted_write_leaves_the_old_file_and_no_partial_one(tmp_path, monkeypatch):
    img = MetaTensor(torch.ones(1, 8, 6, 4), affine=torch.eye(4, dtype=torch.float64))
    img.meta["filename_or_obj"] = "case.nii.gz"
    save = SaveImage(output_dir=str(tmp_path), output_postfix="seg", separate_folder=False, writer=AtomicNibabelWriter)
    save(img)
    before = (tmp_path / "case_seg.nii.gz").read_bytes()

    def killed(image, filename):  # half a file written, then the process "dies"
        with open(filename, "wb") as f:
            f.write(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(nib, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        save(img * 0)
    assert (tmp_path / "case_seg.nii.gz").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case_seg.nii.gz"]

"""Writing results: output paths checked before any work, atomic replacement, the usual file mode."""
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lbam import Inpainter, InputError
from lbam.cli import main
from lbam.io import atomic_path, check_output, result_mode, save_image

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "ladybird.jpg"
EXAMPLE_MASK = ROOT / "examples" / "ladybird_mask.png"


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _one_line_error(capsys, *words):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lbam: error:"), err
    for w in words:
        assert w in err[0], err[0]


@pytest.fixture()
def no_work(monkeypatch):
    """Loading weights (the first real work of `lbam inpaint`) fails the test."""
    def refuse(*a, **k):
        raise AssertionError("the output path should have been refused before loading the weights")
    monkeypatch.setattr(Inpainter, "from_pretrained", classmethod(refuse))


def test_output_naming_a_folder_is_refused_before_any_work(tmp_path, no_work, capsys):
    assert main(["inpaint", str(EXAMPLE), str(EXAMPLE_MASK), "-o", str(tmp_path)]) == 2
    _one_line_error(capsys, "is a folder")


@pytest.mark.parametrize("name, words", [("out.xyz", "'.xyz'"), ("out", "no extension")])
def test_unknown_output_extension_is_refused_before_any_work(tmp_path, no_work, capsys, name, words):
    assert main(["inpaint", str(EXAMPLE), str(EXAMPLE_MASK), "-o", str(tmp_path / name)]) == 2
    _one_line_error(capsys, words, ".png")
    assert not (tmp_path / name).exists()


def test_rgba_result_as_jpeg_is_refused_before_any_work(tmp_path, no_work, capsys):
    Image.open(EXAMPLE).convert("RGBA").save(tmp_path / "rgba.png")
    assert main(["inpaint", str(tmp_path / "rgba.png"), str(EXAMPLE_MASK), "-o", str(tmp_path / "o.jpg")]) == 2
    _one_line_error(capsys, "RGBA", "JPEG")
    assert main(["inpaint", str(EXAMPLE), str(EXAMPLE_MASK), "-o", str(tmp_path / "o.png"),
                 "--save-edges", str(tmp_path / "e.nope")]) == 2
    _one_line_error(capsys, "'.nope'")


def test_check_output_and_result_mode():
    assert check_output("a.JPG", "RGB") == "JPEG" and check_output("a.png", "I;16") == "PNG"
    with pytest.raises(InputError, match="F image as PNG"):
        check_output("a.png", result_mode("F"))
    assert [result_mode(m) for m in ("RGB", "P", "1", "I;16B", "PA", "CMYK", "LA")] == \
        ["RGB", "RGB", "L", "I;16", "RGBA", "RGB", "LA"]


def test_a_failing_write_leaves_the_previous_result_intact(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out.png"
    out.write_bytes(b"previous result")

    real_save = Image.Image.save

    def broken_save(self, fp, *args, **kwargs):  # writes part of a file, then the disk fills up
        if not isinstance(fp, (str, os.PathLike)):
            return real_save(self, fp, *args, **kwargs)  # in memory: fine
        Path(fp).write_bytes(b"\x89PNG half")
        raise OSError("No space left on device")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    assert main(["inpaint", str(EXAMPLE), str(EXAMPLE_MASK), "-o", str(out)]) == 2
    _one_line_error(capsys, "No space left")
    assert out.read_bytes() == b"previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]  # no temporary file left behind


def test_concurrent_writers_get_their_own_temporary_files(tmp_path):
    target = tmp_path / "r.png"
    with atomic_path(target) as a, atomic_path(target) as b:
        assert a != b and a.parent == b.parent == tmp_path
        a.write_bytes(b"A" * 1000)
        b.write_bytes(b"B" * 10)
        assert not target.exists()  # nothing visible until a writer is done
    assert target.read_bytes() == b"A" * 1000  # the last writer to finish wins, whole


def test_written_files_get_the_usual_mode(tmp_path):
    want = 0o666 & ~_umask()
    Inpainter.from_config("tiny", device="cpu", fuse=False).save_pretrained(tmp_path / "w")
    for f in (tmp_path / "w").iterdir():
        assert f.stat().st_mode & 0o777 == want, f
    save_image(Image.fromarray(np.zeros((4, 4, 3), np.uint8)), tmp_path / "x" / "img.png")
    assert (tmp_path / "x" / "img.png").stat().st_mode & 0o777 == want

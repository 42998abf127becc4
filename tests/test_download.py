"""monodepth_tf.download against a local HTTP server: atomic, checked, resumable, clear errors."""

import io
import socket
import urllib.error

import pytest

from monodepth_tf import download as dl
from tests.zoo_server import FileServer, closed_port_url, md5_of

BODY = bytes(range(256)) * 4000  # 1,024,000 bytes


@pytest.fixture
def server():
    with FileServer({"data.bin": BODY}) as running:
        yield running


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir())


def test_download_writes_the_file_and_checks_its_md5(server, tmp_path):
    log = io.StringIO()
    target = dl.download(server.url + "data.bin", tmp_path / "sub" / "data.bin", md5=md5_of(BODY),
                         stream=log, chunk_bytes=100_000)
    assert target.read_bytes() == BODY and leftovers(tmp_path / "sub") == ["data.bin"]
    lines = log.getvalue().splitlines()
    # not a terminal: a plain line at each tenth (102,400 bytes), read in 100,000-byte chunks
    assert len(lines) == 10 and "\r" not in log.getvalue()
    assert lines[-1].startswith("1000.0 KB / 1000.0 KB  100%") and lines[-1].endswith("/s")
    assert lines[0].startswith("195.3 KB / 1000.0 KB   19%")  # 200,000 bytes


def test_progress_bar_on_a_terminal(server, tmp_path):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    log = Terminal()
    dl.download(server.url + "data.bin", tmp_path / "data.bin", stream=log, chunk_bytes=512_000)
    frames = log.getvalue().split("\r")[1:]
    assert len(frames) == 2
    assert frames[0].startswith("[###############...............]  500.0 KB / 1000.0 KB   50%")
    assert frames[1].startswith("[" + "#" * 30 + "]  1000.0 KB / 1000.0 KB  100%")
    assert frames[1].endswith("/s\n")


def test_wrong_md5_is_refused_and_the_file_removed(server, tmp_path):
    with pytest.raises(dl.ChecksumError) as error:
        dl.download(server.url + "data.bin", tmp_path / "data.bin", md5="0" * 32, progress=False)
    assert str(error.value) == (f"{server.url}data.bin: MD5 {md5_of(BODY)} differs from the "
                                f"expected {'0' * 32} (a corrupt or different file; it has been "
                                "removed)")
    assert leftovers(tmp_path) == []


def test_interrupted_download_leaves_nothing(server, tmp_path):
    server.cut["data.bin"] = 300_000
    with pytest.raises(dl.DownloadError) as error:
        dl.download(server.url + "data.bin", tmp_path / "data.bin", progress=False)
    assert str(error.value) == f"{server.url}data.bin: interrupted after 300000 of 1024000 bytes"
    assert leftovers(tmp_path) == []


def test_resume_asks_for_the_rest_only(server, tmp_path):
    server.cut["data.bin"] = 300_000
    with pytest.raises(dl.DownloadError, match="interrupted after 300000"):
        dl.download(server.url + "data.bin", tmp_path / "data.bin", resume=True, progress=False)
    assert (tmp_path / "data.bin.part").stat().st_size == 300_000
    del server.cut["data.bin"]
    dl.download(server.url + "data.bin", tmp_path / "data.bin", md5=md5_of(BODY), resume=True,
                progress=False)
    assert (tmp_path / "data.bin").read_bytes() == BODY and leftovers(tmp_path) == ["data.bin"]
    assert server.requests == [("data.bin", None), ("data.bin", "bytes=300000-")]


def test_resume_restarts_when_the_server_ignores_ranges(tmp_path):
    with FileServer({"data.bin": BODY}, ranges=False) as server:
        (tmp_path / "data.bin.part").write_bytes(b"x" * 1000)  # would corrupt if appended to
        dl.download(server.url + "data.bin", tmp_path / "data.bin", md5=md5_of(BODY),
                    resume=True, progress=False)
    assert (tmp_path / "data.bin").read_bytes() == BODY
    assert server.requests == [("data.bin", "bytes=1000-")]


def test_resume_refuses_a_range_other_than_the_one_asked(server, tmp_path):
    (tmp_path / "data.bin.part").write_bytes(BODY[:5000])
    server.shift = 1000
    with pytest.raises(dl.DownloadError) as error:
        dl.download(server.url + "data.bin", tmp_path / "data.bin", resume=True, progress=False)
    assert str(error.value) == (f"{server.url}data.bin: asked for bytes 5000- but the server "
                                "sent 'bytes 4000-1023999/1024000'")
    assert (tmp_path / "data.bin.part").read_bytes() == BODY[:5000]  # kept to resume later


def test_resume_of_a_complete_part_file_starts_again(server, tmp_path):
    (tmp_path / "data.bin.part").write_bytes(BODY)  # the server answers 416 past the end
    dl.download(server.url + "data.bin", tmp_path / "data.bin", resume=True, progress=False)
    assert (tmp_path / "data.bin").read_bytes() == BODY
    assert server.requests == [("data.bin", f"bytes={len(BODY)}-"), ("data.bin", None)]


def test_http_error_and_closed_port_name_the_address_and_cause(server, tmp_path):
    with pytest.raises(dl.DownloadError) as error:
        dl.download(server.url + "absent.zip", tmp_path / "a.zip", progress=False)
    assert str(error.value) == f"{server.url}absent.zip: HTTP 404 Not Found"
    offline = closed_port_url() + "a.zip"
    with pytest.raises(dl.DownloadError) as error:
        dl.download(offline, tmp_path / "a.zip", progress=False)
    assert str(error.value) == f"{offline}: Connection refused"
    assert isinstance(error.value, OSError) and leftovers(tmp_path) == []


def test_describe_error():
    assert dl.describe_error(urllib.error.URLError(socket.gaierror(-2, "Name or service not "
                                                                   "known"))) == \
        "Name or service not known"
    assert dl.describe_error(urllib.error.URLError(socket.timeout("timed out"))) == "timed out"
    assert dl.describe_error(urllib.error.URLError("unknown url type: ftpx")) == \
        "unknown url type: ftpx"


def test_fetch_text_and_parse_md5(server):
    server.files["data.bin.md5"] = f"{md5_of(BODY).upper()}  data.bin\n".encode()
    text = dl.fetch_text(server.url + "data.bin.md5")
    assert dl.parse_md5(text) == md5_of(BODY)
    assert dl.fetch_text(server.url + "nothing.md5") is None
    with pytest.raises(dl.DownloadError, match="holds no MD5"):
        dl.parse_md5("<html>not found</html>", "x.md5")
    with pytest.raises(dl.DownloadError, match="Connection refused"):
        dl.fetch_text(closed_port_url() + "x.md5")


@pytest.mark.parametrize("count, text", [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KB"),
                                         (5 * 2**20, "5.0 MB"), (3 * 2**30, "3.0 GB")])
def test_format_bytes(count, text):
    assert dl.format_bytes(count) == text

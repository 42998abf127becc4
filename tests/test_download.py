"""monodepth_tf.download against a local HTTP server: atomic, checked, resumable, retried, clear
errors, progress (the model zoo, the ImageNet weights and the KITTI archives all go through it)."""

import io
import socket
import urllib.error

import pytest

from monodepth_tf import download as dl
from tests.http_server import FileServer, closed_port_url
from tests.zoo_server import md5_of

BODY = bytes(range(256)) * 4000  # 1,024,000 bytes
SIZE = len(BODY)


@pytest.fixture
def server():
    with FileServer({"data.bin": BODY}) as running:
        yield running


class FakeTime:
    """Stands in for the ``time`` module in monodepth_tf.download: a clock moved by hand, and
    sleeps recorded instead of waited."""

    def __init__(self):
        self.now, self.sleeps = 1000.0, []

    def perf_counter(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


@pytest.fixture
def fake_time(monkeypatch):
    clock = FakeTime()
    monkeypatch.setattr(dl, "time", clock)
    return clock


class Terminal(io.StringIO):
    def isatty(self):
        return True


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir())


# ---- a complete download: the file, its MD5, the progress ---------------------------------


def test_download_writes_the_file_checks_its_md5_and_logs_each_tenth(server, tmp_path):
    log = io.StringIO()
    target = dl.download(server.url + "data.bin", tmp_path / "sub" / "data.bin", md5=md5_of(BODY),
                         stream=log, chunk_bytes=100_000)
    assert target == tmp_path / "sub" / "data.bin"
    assert target.read_bytes() == BODY and leftovers(tmp_path / "sub") == ["data.bin"]
    lines = log.getvalue().splitlines()
    # not a terminal: a line at each tenth (102,400 bytes) reached, read in 100,000-byte chunks
    assert "\r" not in log.getvalue() and "#" not in log.getvalue()
    assert [int(line.split("%")[0].split()[-1]) for line in lines] == \
        [19, 29, 39, 48, 58, 68, 78, 87, 97, 100]
    assert lines[0].startswith("data.bin 200.0 kB / 1.0 MB   19%  ")
    assert lines[-1].startswith("data.bin 1.0 MB / 1.0 MB  100%  ")
    assert lines[-1].endswith(" ETA 00:00:00")


def test_progress_bar_on_a_terminal(server, tmp_path):
    log = Terminal()
    dl.download(server.url + "data.bin", tmp_path / "data.bin", stream=log, chunk_bytes=512_000)
    frames = log.getvalue().split("\r")[1:]
    assert len(frames) == 2
    assert frames[0].startswith("data.bin [###############...............]  512.0 kB / 1.0 MB"
                                "   50%  ")
    assert frames[1].startswith("data.bin [" + "#" * 30 + "]  1.0 MB / 1.0 MB  100%  ")
    assert frames[1].endswith(" ETA 00:00:00\n")


def test_progress_rate_and_time_left_count_only_new_bytes(fake_time):
    log = io.StringIO()
    bar = dl.ByteProgress(4_000_000, done=1_000_000, label="x.zip", stream=log)  # resumed
    fake_time.now += 2.0
    bar.update(500_000)  # 500 kB new in 2 s; 2.5 MB left at 250 kB/s: 10 s
    fake_time.now += 2.0
    bar.update(100_000)  # 1.6 MB: the next tenth; 600 kB in 4 s
    bar.update(100_000)  # no new tenth: no line
    bar.close()  # the last count (1.7 MB) is printed once more
    assert log.getvalue().splitlines() == [
        "x.zip 1.5 MB / 4.0 MB   37%  250.0 kB/s  ETA 00:00:10",
        "x.zip 1.6 MB / 4.0 MB   40%  150.0 kB/s  ETA 00:00:16",
        "x.zip 1.7 MB / 4.0 MB   42%  175.0 kB/s  ETA 00:00:13"]
    unknown = io.StringIO()  # no size from the server: a line each 10 MB, and at the end
    bar = dl.ByteProgress(None, label="y.zip", stream=unknown)
    fake_time.now += 1.0
    for _ in range(13):
        bar.update(1_000_000)
    bar.close()
    assert unknown.getvalue().splitlines() == ["y.zip 10.0 MB  10.0 MB/s",
                                               "y.zip 13.0 MB  13.0 MB/s"]


@pytest.mark.parametrize("count, text", [(0, "0 B"), (999, "999 B"), (1500, "1.5 kB"),
                                         (1_234_567, "1.2 MB"), (175e9, "175.0 GB"),
                                         (2.5e12, "2.5 TB"), (3e15, "3000.0 TB")])
def test_human_bytes(count, text):
    assert dl.human_bytes(count) == text


def test_format_duration_does_not_wrap_at_a_day():
    assert [dl.format_duration(s) for s in (0, 59.6, 3725, 200_000)] == \
        ["00:00:00", "00:01:00", "01:02:05", "55:33:20"]


# ---- failures: nothing is left under the final name -------------------------------------------


def test_wrong_md5_is_refused_and_the_file_removed(server, tmp_path):
    with pytest.raises(dl.ChecksumError) as error:
        dl.download(server.url + "data.bin", tmp_path / "data.bin", md5="0" * 32, progress=False)
    assert str(error.value) == (f"{server.url}data.bin: MD5 {md5_of(BODY)} differs from the "
                                f"expected {'0' * 32} (a corrupt or different file; it has been "
                                "removed)")
    assert leftovers(tmp_path) == []


def test_interrupted_download_leaves_nothing(server, tmp_path):
    server.cut["data.bin"] = 300_000
    with pytest.raises(dl.ConnectionLost) as error:
        dl.download(server.url + "data.bin", tmp_path / "data.bin", progress=False)
    assert str(error.value) == f"{server.url}data.bin: interrupted after 300000 of 1024000 bytes"
    assert leftovers(tmp_path) == []


def test_http_error_is_not_retried_and_a_closed_port_is(server, tmp_path, fake_time):
    with pytest.raises(dl.DownloadError) as error:
        dl.download(server.url + "absent.zip", tmp_path / "a.zip", progress=False, retries=2)
    assert str(error.value) == f"{server.url}absent.zip: HTTP 404 Not Found"
    assert server.requests == [("absent.zip", None)] and fake_time.sleeps == []
    offline = closed_port_url() + "a.zip"
    with pytest.raises(dl.ConnectionLost) as error:
        dl.download(offline, tmp_path / "a.zip", progress=False, retries=1)
    assert str(error.value) == f"{offline}: Connection refused" and fake_time.sleeps == [1.0]
    assert isinstance(error.value, OSError) and leftovers(tmp_path) == []


def test_a_file_that_cannot_be_written_is_named(server, tmp_path):
    (tmp_path / "data.bin.part").mkdir()  # in the way of the partial file
    with pytest.raises(dl.DownloadError) as error:
        dl.download(server.url + "data.bin", tmp_path / "data.bin", progress=False, retries=2)
    assert str(error.value) == (f"{server.url}data.bin: cannot write {tmp_path}/data.bin.part: "
                                "Is a directory")
    assert len(server.requests) == 1  # a local problem: not retried


def test_a_size_other_than_the_expected_one_is_refused(server, tmp_path):
    with pytest.raises(dl.DownloadError) as error:
        dl.download(server.url + "data.bin", tmp_path / "data.bin", expected_size=SIZE - 1,
                    progress=False)
    assert str(error.value) == (f"{server.url}data.bin: the server announces 1024000 bytes, "
                                "expected 1023999")
    assert leftovers(tmp_path) == []


# ---- resuming and retrying --------------------------------------------------------------------


def test_resume_asks_for_the_rest_only(server, tmp_path):
    server.cut["data.bin"] = 300_000
    with pytest.raises(dl.DownloadError, match="interrupted after 300000 of 1024000 bytes"):
        dl.download(server.url + "data.bin", tmp_path / "data.bin", resume=True, progress=False)
    assert (tmp_path / "data.bin.part").read_bytes() == BODY[:300_000]  # kept for the next call
    del server.cut["data.bin"]
    dl.download(server.url + "data.bin", tmp_path / "data.bin", md5=md5_of(BODY), resume=True,
                progress=False)
    assert (tmp_path / "data.bin").read_bytes() == BODY and leftovers(tmp_path) == ["data.bin"]
    assert server.requests == [("data.bin", None), ("data.bin", "bytes=300000-")]


def test_retries_continue_within_one_call_after_a_5xx_and_a_dropped_connection(
        server, tmp_path, fake_time):
    server.fail_once["data.bin"] = 503
    server.cut_once["data.bin"] = 300_000
    dl.download(server.url + "data.bin", tmp_path / "data.bin", md5=md5_of(BODY), retries=2,
                progress=False)
    assert (tmp_path / "data.bin").read_bytes() == BODY and leftovers(tmp_path) == ["data.bin"]
    assert server.requests == [("data.bin", None), ("data.bin", None),
                               ("data.bin", "bytes=300000-")]
    assert fake_time.sleeps == [1.0, 2.0]
    # every attempt fails: the last failure is raised; without resume nothing is kept
    server.cut["data.bin"] = 300_000
    with pytest.raises(dl.ConnectionLost, match="interrupted after 300000 of 1024000 bytes$"):
        dl.download(server.url + "data.bin", tmp_path / "again.bin", retries=1, progress=False)
    assert server.requests[-2:] == [("data.bin", None), ("data.bin", "bytes=300000-")]
    assert leftovers(tmp_path) == ["data.bin"] and fake_time.sleeps == [1.0, 2.0, 1.0]


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
        dl.download(server.url + "data.bin", tmp_path / "data.bin", resume=True, retries=2,
                    progress=False)
    assert str(error.value) == (f"{server.url}data.bin: asked for bytes 5000- but the server "
                                "sent 'bytes 4000-1023999/1024000'")
    assert (tmp_path / "data.bin.part").read_bytes() == BODY[:5000]  # kept to resume later
    assert len(server.requests) == 1  # not a network failure: not retried


def test_resume_of_a_complete_part_and_of_a_longer_one(server, tmp_path):
    part = tmp_path / "data.bin.part"
    part.write_bytes(BODY)  # the server answers 416, "bytes */1024000": it is complete
    dl.download(server.url + "data.bin", tmp_path / "data.bin", md5=md5_of(BODY), resume=True,
                progress=False)
    assert (tmp_path / "data.bin").read_bytes() == BODY
    assert server.requests == [("data.bin", f"bytes={SIZE}-")]
    part.write_bytes(BODY + b"more")  # longer than the file: not its start
    dl.download(server.url + "data.bin", tmp_path / "data.bin", resume=True, progress=False)
    assert (tmp_path / "data.bin").read_bytes() == BODY
    assert server.requests[1:] == [("data.bin", f"bytes={SIZE + 4}-"), ("data.bin", None)]


def test_resume_with_an_expected_size(server, tmp_path):
    part = tmp_path / "data.bin.part"
    part.write_bytes(BODY)  # complete: not even asked for
    dl.download(server.url + "data.bin", tmp_path / "data.bin", expected_size=SIZE, resume=True,
                progress=False)
    assert (tmp_path / "data.bin").read_bytes() == BODY and server.requests == []
    part.write_bytes(b"x" * (SIZE + 1))  # longer than the expected size: fetched afresh
    dl.download(server.url + "data.bin", tmp_path / "data.bin", expected_size=SIZE, resume=True,
                progress=False)
    assert (tmp_path / "data.bin").read_bytes() == BODY
    assert server.requests == [("data.bin", None)]


# ---- small requests ---------------------------------------------------------------------------


def test_remote_size_asks_with_head(server):
    assert dl.remote_size(server.url + "data.bin") == SIZE
    assert dl.remote_size(server.url + "absent.zip") is None
    assert dl.remote_size(closed_port_url() + "data.bin") is None
    assert server.heads == ["data.bin", "absent.zip"] and server.requests == []


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

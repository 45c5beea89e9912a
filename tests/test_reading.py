"""Inputs that cannot be used fail with one clear line and leave nothing; unusual but valid inputs (audio or
none, rotation, variable frame rate, odd sizes, pixel formats, no face, odd paths, stills, anamorphic pixels,
a folder of good and bad files) are annotated.
"""

import csv
import dataclasses
import json
import os
import shutil
import weakref
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pandas as pd
import pytest
from media import (
    assert_complete,
    assert_nothing_for,
    cli,
    error_lines,
    ffmpeg,
    small,
    vfr_video,
    video_props,
    zero_frame_avi,
)

from fer_video.batch import run_batch
from fer_video.cli import main
from fer_video.demo import face_sprites, make_demo_video, render_frame, sprite_rects
from fer_video.errors import InputError
from fer_video.pipeline import annotate_video, output_paths
from fer_video.timeline import read_timeline
from fer_video.video import VideoReader, VideoWriter

# ------------------------------------------------------------ 1-4: unusable inputs, clear one-line errors


def _text(path: Path, good: Path) -> Path:
    path.write_text("this is a shopping list, not a video\n" * 20)
    return path


def _truncated_moov_last(path: Path, good: Path) -> Path:
    data = good.read_bytes()  # PyAV writes the index (moov) at the end: half a file has none
    path.write_bytes(data[: len(data) // 2])
    return path


def _zero_bytes(path: Path, good: Path) -> Path:
    path.write_bytes(b"")
    return path


def _audio_only(path: Path, good: Path) -> Path:
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "aac", "-f", "mp4", path)
    return path


def _zero_frames(path: Path, good: Path) -> Path:
    return zero_frame_avi(path)


def _no_samples_mp4(path: Path, good: Path) -> Path:
    with av.open(str(path), "w") as out:  # an MP4 whose video track has no sample: FFmpeg drops the track
        v = out.add_stream("libx264", rate=10)
        v.width, v.height, v.pix_fmt = 160, 120, "yuv420p"
        out.start_encoding()
        out.mux(v.encode(None))
    return path


def _missing(path: Path, good: Path) -> Path:
    return path


UNUSABLE = {
    "text renamed .mp4": ("notes.mp4", _text, "not a readable video (Invalid data found when processing input)"),
    "truncated, index at the end": ("cut.mp4", _truncated_moov_last, "not a readable video"),
    "zero bytes": ("empty.mp4", _zero_bytes, "empty file (0 bytes)"),
    "audio only": ("song.mp4", _audio_only, "no video stream"),
    "zero frames": ("blank.avi", _zero_frames, "no video frames could be decoded"),
    "video track without samples": ("nosamples.mp4", _no_samples_mp4, "no video stream"),
    "missing": ("gone.mp4", _missing, "no such file"),
    "png renamed .mp4": ("photo.mp4", lambda p, g: _picture(p, g, ".png"), "a still image (png), not a video"),
    "jpeg renamed .mp4": ("snap.mp4", lambda p, g: _picture(p, g, ".jpg"), "a still image (jpeg), not a video"),
}


@pytest.mark.parametrize("case", list(UNUSABLE))
def test_unusable_input_one_line_error_nothing_written(case, tmp_path, good_clip, tiny_weights, capsys):
    filename, make, reason = UNUSABLE[case]
    src = make(tmp_path / filename, good_clip)
    out = tmp_path / "out"
    code, stdout, err = cli(capsys, tiny_weights, str(src), "--out", str(out))
    assert code == 1
    lines = error_lines(err)
    assert len(lines) == 1 and lines[0].startswith(f"fer-video: error: {filename}: {reason}"), err
    assert "Traceback" not in err and "[Errno" not in err
    assert_nothing_for(out, Path(filename).stem)
    assert sorted(out.iterdir()) == []  # a single input: no batch.csv either


@pytest.mark.parametrize("case", ["text renamed .mp4", "zero bytes", "audio only", "zero frames"])
def test_unusable_input_raises_input_error(case, tmp_path, good_clip, fast_settings, models):
    filename, make, reason = UNUSABLE[case]
    src = make(tmp_path / filename, good_clip)
    with pytest.raises(InputError, match=r"^" + filename.replace(".", r"\.") + ": "):
        annotate_video(src, tmp_path / "out", fast_settings, models=models)
    assert_nothing_for(tmp_path / "out", src.stem)


def test_truncated_with_index_first_keeps_decodable_part(tmp_path, clips, fast_settings, models):
    """An MP4 with its index first (faststart), cut in half: the first half is annotated, the summary and
    batch.csv say the file is truncated (no error: the frames before the cut are real)."""
    full = small(clips / "long.mp4", seconds=2.0)
    faststart = tmp_path / "faststart.mp4"
    ffmpeg("-i", full, "-c", "copy", "-movflags", "+faststart", faststart)
    with av.open(str(faststart)) as c:  # cut in the middle of the middle frame's data
        packets = [(p.pos, p.size) for p in c.demux(video=0) if p.size]
    pos, size = packets[len(packets) // 2]
    cut = tmp_path / "half.mp4"
    cut.write_bytes(faststart.read_bytes()[: pos + size // 2])
    with VideoReader(cut) as reader:
        assert reader.info.frame_count == 20  # the index still promises every frame
        n = sum(1 for _ in reader)
        assert 0 < n < 20 and reader.truncated_at == n
    out = tmp_path / "out"
    rows = run_batch([cut], out, fast_settings, models=models)
    assert [r.status for r in rows] == ["ok"]
    assert "truncated file" in rows[0].reason and rows[0].frames == n
    summary = assert_complete(out, "half")
    assert summary["truncated_at_frame"] == n == summary["frames"]
    # the complete file is not reported as truncated
    rows = run_batch([full], out, fast_settings, models=models)
    assert (
        rows[0].reason == ""
        and json.loads(output_paths(out, "long")["summary"].read_text())["truncated_at_frame"] is None
    )


# -------------------------------------------------------------------------- 5: with and without audio


@pytest.mark.parametrize("audio", ["none", "aac", "pcm_s16le"])
def test_audio_or_not(audio, tmp_path, clips, fast_settings, models):
    src = small(clips / f"audio-{audio}.mp4", audio=audio == "aac")
    if audio == "pcm_s16le":  # a codec MP4 players do not take: re-encoded to AAC
        mov = tmp_path / "pcm.mov"
        ffmpeg("-i", src, "-f", "lavfi", "-i", "sine=duration=1", "-c:v", "copy", "-c:a", "pcm_s16le", "-shortest", mov)
        src = mov
    r = annotate_video(src, tmp_path / "out", fast_settings, models=models)
    assert r.info.has_audio == (audio != "none")
    assert_complete(tmp_path / "out", src.stem)
    props = video_props(r.outputs["video"])
    assert props["audio"] == ([] if audio == "none" else ["aac"])
    assert props["frames"] == r.frames == 10 and r.faces >= 1


def test_unreadable_audio_track_gives_a_silent_video_not_a_failure(tmp_path, fast_settings, models, caplog):
    """An audio track that cannot be decoded (AC-3 header, garbage packets): the video is still annotated,
    without sound, and a warning says why."""
    src = tmp_path / "bad sound.mkv"
    sprites = face_sprites()
    with av.open(str(src), "w") as out:
        v = out.add_stream("libx264", rate=10)
        v.width, v.height, v.pix_fmt = 96, 64, "yuv420p"
        a = out.add_stream("ac3", rate=48000)
        a.layout = "mono"
        for i in range(5):
            out.mux(v.encode(av.VideoFrame.from_ndarray(render_frame(i, 10, 96, 64, sprites, 1, True), "rgb24")))
        out.mux(v.encode(None))
        for i in range(5):
            packet = av.Packet(bytes(range(256)) * 2)
            packet.stream, packet.pts, packet.dts, packet.time_base = a, i * 1536, i * 1536, Fraction(1, 48000)
            out.mux(packet)
    r = annotate_video(src, tmp_path / "out", fast_settings, models=models)
    assert r.info.has_audio and r.frames == 5
    assert_complete(tmp_path / "out", "bad sound")
    assert video_props(r.outputs["video"])["audio"] == []
    assert any("bad sound.mkv: audio track left out" in m for m in caplog.messages)


# ------------------------------------------------------------------------ 6: rotation metadata (phones)


@pytest.fixture(scope="module")
def upright(clips, fast_settings, models) -> tuple[Path, Path]:
    """The upright clip (2 faces, with audio) and its annotation: the reference for the rotated copies."""
    src = make_demo_video(
        clips / "upright.mp4", width=160, height=120, fps=10.0, seconds=1.0, faces=2, noface_from=None, audio=True
    )
    out = clips / "upright-out"
    annotate_video(src, out, fast_settings, models=models)
    return src, out


ROTATIONS = {  # display rotation (degrees counter-clockwise) -> the filter that stores the frames turned
    90: "transpose=clock",
    270: "transpose=cclock",
    180: "hflip,vflip",
}


def _phone_clip(src: Path, folder: Path, rotation: int) -> Path:
    """``src`` re-encoded with its frames stored turned, and display rotation metadata to turn them back."""
    stored = folder / "stored.mp4"
    ffmpeg("-i", src, "-vf", ROTATIONS[rotation], "-c:v", "libx264", "-crf", "12", "-c:a", "copy", stored)
    phone = folder / f"phone {rotation}.mp4"
    ffmpeg("-display_rotation", rotation, "-i", stored, "-c", "copy", phone)
    return phone


def test_rotation_180_read_upright(tmp_path, upright):
    phone = _phone_clip(upright[0], tmp_path, 180)
    ref = video_props(upright[0])["images"]
    with VideoReader(phone) as reader:
        assert (reader.info.width, reader.info.height, reader.info.rotation) == (160, 120, 180)
        diffs = [np.abs(f.image.astype(int) - r.astype(int)).mean() for f, r in zip(reader, ref, strict=True)]
    assert max(diffs) < 6


@pytest.mark.parametrize("rotation", [90, 270])
def test_rotation_metadata_upright_output_boxes_on_faces(rotation, tmp_path, upright, fast_settings, models):
    src, ref_out = upright
    phone = _phone_clip(src, tmp_path, rotation)

    # what PyAV reports, and what the reader makes of it
    with av.open(str(phone)) as c:
        first = next(c.decode(video=0))
        assert (first.width, first.height) == (120, 160)
        assert round(first.rotation) % 360 == rotation
    ref_frames = video_props(src)["images"]
    with VideoReader(phone) as reader:
        assert (reader.info.width, reader.info.height, reader.info.rotation) == (160, 120, rotation)
        frames = list(reader)
    assert len(frames) == len(ref_frames)
    for f, ref in zip(frames, ref_frames, strict=True):
        assert f.image.shape == (120, 160, 3)
        assert np.abs(f.image.astype(int) - ref.astype(int)).mean() < 6  # upright: the same picture

    r = annotate_video(phone, tmp_path / "out", fast_settings, models=models)
    assert (r.info.width, r.info.height) == (160, 120)
    assert_complete(tmp_path / "out", phone.stem)
    # boxes land on the faces: each box centre inside a face sprite of the upright frame
    df = read_timeline(r.outputs["csv"]).dropna(subset=["face_id"])
    assert df["frame"].nunique() >= 8 and r.faces >= 2
    sprites = face_sprites()
    for row in df.itertuples():
        cx, cy = (row.x1 + row.x2) / 2, (row.y1 + row.y2) / 2
        rects = sprite_rects(int(row.frame), 10.0, 160, 120, sprites, 2)
        assert any(x1 <= cx <= x2 and y1 <= cy <= y2 for x1, y1, x2, y2 in rects), (row.frame, cx, cy)
    # ... and where they land on the upright original
    ref = read_timeline(output_paths(ref_out, "upright")["csv"]).dropna(subset=["face_id"])
    mine = df.groupby("frame")[["x1", "y1", "x2", "y2"]].apply(lambda d: np.sort(d.to_numpy(), axis=0))
    theirs = ref.groupby("frame")[["x1", "y1", "x2", "y2"]].apply(lambda d: np.sort(d.to_numpy(), axis=0))
    common = [k for k in mine.index if k in theirs.index and mine[k].shape == theirs[k].shape]
    assert len(common) >= 8
    assert max(np.abs(mine[k] - theirs[k]).max() for k in common) < 8  # pixels
    # the annotated video is upright, at the displayed size, without rotation metadata, audio kept
    out_props = video_props(r.outputs["video"])
    ref_props = video_props(output_paths(ref_out, "upright")["video"])
    assert out_props["size"] == (160, 120) and out_props["rotation"] == 0 and out_props["audio"] == ["aac"]
    # each annotated frame matches the upright one far better than that one turned 180 degrees or mirrored. The
    # median pixel difference: the labels drawn may differ between the two runs (the random test model's top
    # class is near-tied and flips with the re-encoded pixels; at 160x120 a label covers a large share of the
    # frame, so a mean moved by 2.5 to 18), the picture under them does not
    diff = lambda a, b: np.median(np.abs(a.astype(int) - b.astype(int)))  # noqa: E731
    for a, b in zip(out_props["images"], ref_props["images"], strict=True):
        assert diff(a, b) < min(diff(a, b[::-1, ::-1]), diff(a, b[:, ::-1])) / 3


# ---------------------------------------------------------------------------------- 7: variable frame rate


def test_variable_frame_rate_keeps_real_timestamps(tmp_path, fast_settings, models):
    times = [0.0, 0.1, 0.2, 0.5, 0.55, 0.6, 1.2, 1.25, 1.3, 2.0]
    src = vfr_video(tmp_path / "vfr.mp4", times)
    r = annotate_video(src, tmp_path / "out", fast_settings, models=models)
    assert_complete(tmp_path / "out", "vfr")
    df = read_timeline(r.outputs["csv"])
    per_frame = df.groupby("frame")["time_s"].first()
    assert list(per_frame.index) == list(range(len(times)))
    np.testing.assert_allclose(per_frame.to_numpy(), times, atol=1e-3)
    # the annotated video keeps the irregular spacing too
    np.testing.assert_allclose(video_props(r.outputs["video"])["times"], times, atol=2e-3)
    summary = json.loads(r.outputs["summary"].read_text())
    for face in summary["per_face"].values():
        assert face["last_s"] <= 2.0 + 1e-6


# ----------------------------------------------------------------------------------- 8: odd and extreme sizes


@pytest.mark.parametrize("width,height,seconds", [(719, 401, 0.5), (64, 64, 1.0)])  # 4K: see the next test
def test_odd_and_extreme_sizes(width, height, seconds, tmp_path, clips, fast_settings, models):
    # odd sizes cannot be 4:2:0; yuv444p H.264 can hold them
    pix_fmt = "yuv444p" if width % 2 or height % 2 else "yuv420p"
    src = make_demo_video(
        clips / f"size {width}x{height}.mp4",
        width=width,
        height=height,
        fps=10.0,
        seconds=seconds,
        faces=1,
        noface_from=None,
        audio=False,
        pix_fmt=pix_fmt,
    )
    r = annotate_video(src, tmp_path / "out", fast_settings, models=models)
    summary = assert_complete(tmp_path / "out", src.stem)
    assert (summary["video"]["width"], summary["video"]["height"]) == (width, height)
    n = max(1, round(seconds * 10))
    assert r.frames == n
    props = video_props(r.outputs["video"])
    assert props["size"] == (width + width % 2, height + height % 2)  # padded by one pixel when odd
    assert props["pix_fmt"] == "yuv420p"
    df = read_timeline(r.outputs["csv"]).dropna(subset=["face_id"])
    assert (df[["x1", "x2"]].to_numpy() <= width).all() and (df[["y1", "y2"]].to_numpy() <= height).all()
    assert (df[["x1", "y1"]].to_numpy() >= 0).all()
    if width >= 400:
        assert r.faces >= 1


def _proc_status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # Linux: resets VmHWM to the current RSS
        return True
    except OSError:
        return False


def test_4k_works_with_bounded_memory(tmp_path, fast_settings, models):
    """A few 4K frames: upright output at full size, faces found on the downscaled detector copy, and the
    process's peak memory grows by a bounded amount (about 1 GB measured here, mostly x264's lookahead;
    it plateaus after ~20 frames whatever the length: see the next test for why it cannot grow with it)."""
    width, height = 3840, 2160
    src = make_demo_video(
        tmp_path / "4k.mp4", width=width, height=height, fps=10.0, seconds=0.3, faces=1, noface_from=None, audio=False
    )
    measured = Path("/proc/self/status").exists() and _reset_peak_rss()
    base = _proc_status("VmRSS") if measured else 0
    annotate_video(src, tmp_path / "out", fast_settings, models=models)
    if measured:
        growth = _proc_status("VmHWM") - base
        assert growth < 2.5e9, f"peak RSS grew by {growth / 1e9:.2f} GB for 4K"
    summary = assert_complete(tmp_path / "out", "4k")
    assert summary["frames"] == 3 and summary["faces"] >= 1
    assert (summary["video"]["width"], summary["video"]["height"]) == (width, height)
    assert video_props(output_paths(tmp_path / "out", "4k")["video"])["size"] == (width, height)


def test_frames_are_released_as_the_video_streams(tmp_path, clips, fast_settings, models, monkeypatch):
    """Memory does not grow with the video's length: however long the video, only a few detector batches of
    decoded images are alive at any time (the one being decoded ahead, the one in the models, the one being
    drawn and encoded, and one queued between each: at most 5)."""
    src = small(clips / "sixty frames.mp4", width=64, height=64, seconds=6.0)
    compute = dataclasses.replace(models.compute, detect_batch=1)
    batch = compute.chunk_frames(fast_settings.detect_every, 64, 64)  # small chunks, so holding on to frames would show
    assert batch == fast_settings.detect_every
    models = dataclasses.replace(models, compute=compute)
    alive: list = []
    real_iter = VideoReader.__iter__

    def tracking_iter(self):
        for frame in real_iter(self):
            alive.append(weakref.ref(frame.image))
            yield frame

    monkeypatch.setattr(VideoReader, "__iter__", tracking_iter)
    counts = []
    annotate_video(
        src,
        tmp_path / "out",
        fast_settings,
        models=models,
        progress=lambda p: counts.append(sum(r() is not None for r in alive)),
    )
    assert len(alive) == 60 and len(counts) == 60 // batch
    assert max(counts) <= 5 * batch + 1, counts
    assert all(r() is None for r in alive)  # nothing kept once the video is done


# ------------------------------------------------------------------------ 9: grayscale, 4:4:4, 10-bit


@pytest.mark.parametrize(
    "codec,pix_fmt,ext",
    [
        ("libx264", "yuv444p", "mp4"),
        ("libx264", "yuv420p10le", "mp4"),
        ("ffv1", "gray", "mkv"),
        ("libx265", "yuv420p10le", "mp4"),  # HEVC 10-bit, as phones record
    ],
)
def test_pixel_formats(codec, pix_fmt, ext, tmp_path, clips, fast_settings, models):
    src = small(clips / f"pf-{codec}-{pix_fmt}.{ext}", codec=codec, pix_fmt=pix_fmt)
    with av.open(str(src)) as c:
        assert c.streams.video[0].codec_context.pix_fmt == pix_fmt
    r = annotate_video(src, tmp_path / "out", fast_settings, models=models)
    assert_complete(tmp_path / "out", src.stem)
    assert r.frames == 10 and r.faces >= 1
    props = video_props(r.outputs["video"])
    assert (props["codec"], props["pix_fmt"], props["size"]) == ("h264", "yuv420p", (160, 120))
    if pix_fmt == "gray":  # grey in, grey picture out (apart from the coloured boxes)
        img = props["images"][0].astype(int)
        assert np.median(np.abs(img[..., 0] - img[..., 2])) <= 2


# ------------------------------------------------------------------------------------ 10: no face at all


def test_no_face_clean_outputs(tmp_path, clips, tiny_weights, capsys):
    src = small(clips / "empty room.mp4", noface_from=0.0)
    out = tmp_path / "out"
    code, stdout, err = cli(capsys, tiny_weights, str(src), "--out", str(out))
    assert code == 0 and error_lines(err) == []
    summary = assert_complete(out, "empty room")
    assert summary["frames"] == 10 and summary["faces"] == 0 and summary["frames_with_faces"] == 0
    assert summary["no_faces"] is True and summary["message"] == "no face detected in any frame"
    assert summary["dominant_emotion"] is None and summary["per_face"] == {}
    df = read_timeline(output_paths(out, "empty room")["csv"])
    assert list(df["frame"]) == list(range(10))  # one no-face row per frame
    assert df["face_id"].isna().all() and df["emotion"].isna().all()
    # in a batch, batch.csv says so
    code, stdout, err = cli(capsys, tiny_weights, str(src.parent / "empty room.*"), "--out", str(out))
    assert code == 0
    rows = list(csv.DictReader((out / "batch.csv").open()))
    assert [(r["status"], r["reason"], r["faces"]) for r in rows] == [("ok", "no face detected", "0")]


# ---------------------------------------------------------------- 11: spaces and non-ASCII in paths


def test_paths_with_spaces_and_non_ascii(tmp_path, tiny_weights, capsys):
    folder = tmp_path / "vidéos d'été 表情"
    src = small(folder / "clip ünïcödé 😀 (1), take 2.mp4")
    out = tmp_path / "résultats et sorties"
    code, stdout, err = cli(capsys, tiny_weights, str(folder), "--out", str(out))
    assert code == 0 and error_lines(err) == []
    summary = assert_complete(out, src.stem)
    assert summary["input"] == str(src)
    rows = list(csv.DictReader((out / "batch.csv").open(encoding="utf-8")))
    assert [(r["input"], r["status"]) for r in rows] == [(str(src), "ok")]
    # errors name such files intact
    bad = folder / "ça ne va pas 🙃.mp4"
    bad.write_text("nope")
    code, stdout, err = cli(capsys, tiny_weights, str(bad), "--out", str(out))
    assert code == 1 and error_lines(err)[0].startswith("fer-video: error: ça ne va pas 🙃.mp4: not a readable video")


def test_file_name_that_is_not_utf8(tmp_path, good_clip, tiny_weights, capsys):
    """A Linux file name with a Latin-1 byte: processed; batch.csv stays valid UTF-8 (the byte escaped)."""
    folder = tmp_path / "latin"
    folder.mkdir()
    raw = os.path.join(os.fsencode(folder), b"caf\xe9 clip.mp4")
    shutil.copy(good_clip, raw)
    out = tmp_path / "out"
    capsys.readouterr()
    code = main(["annotate", str(folder), "--out", str(out), "--weights", str(tiny_weights), "--device", "cpu"])
    stdout, err = capsys.readouterr()  # not quiet: the per-file line prints the name too
    assert code == 0 and "error" not in err, err  # stderr has the progress bar only
    assert "caf\ufffd clip.mp4: ok" in stdout
    name = os.fsdecode(b"caf\xe9 clip")
    assert_complete(out, name)
    text = (out / "batch.csv").read_bytes().decode("utf-8")
    assert "caf\\udce9 clip.mp4" in text and ",ok," in text


# ------------------------------------------------------------ 15: a folder of good and bad files


def test_folder_of_good_and_bad_files(tmp_path, clips, good_clip, tiny_weights, capsys):
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(good_clip, folder / "a good.mp4")
    small(folder / "b quiet.mkv", noface_from=0.0)
    _text(folder / "c notes.mp4", good_clip)
    _zero_bytes(folder / "d empty.mov", good_clip)
    _audio_only(folder / "e song.m4v", good_clip)
    _truncated_moov_last(folder / "f cut.mp4", good_clip)
    zero_frame_avi(folder / "g blank.avi")
    (folder / "readme.txt").write_text("not a video extension: not an input")
    out = tmp_path / "out"
    code, stdout, err = cli(capsys, tiny_weights, str(folder), "--out", str(out))
    assert code == 1
    expected = {
        "a good.mp4": ("ok", ""),
        "b quiet.mkv": ("ok", "no face detected"),
        "c notes.mp4": ("failed", "c notes.mp4: not a readable video (Invalid data found when processing input)"),
        "d empty.mov": ("failed", "d empty.mov: empty file (0 bytes)"),
        "e song.m4v": ("failed", "e song.m4v: no video stream"),
        "f cut.mp4": ("failed", "f cut.mp4: not a readable video"),
        "g blank.avi": ("failed", "g blank.avi: no video frames could be decoded"),
    }
    rows = pd.read_csv(out / "batch.csv", keep_default_na=False)
    assert list(rows.columns) == ["input", "status", "reason", "frames", "faces", "dominant_emotion", "seconds"]
    got = {Path(r.input).name: (r.status, r.reason) for r in rows.itertuples()}
    assert list(got) == sorted(expected)
    for name, (status, reason) in expected.items():
        assert got[name][0] == status, (name, got[name])
        assert got[name][1].startswith(reason) and "\n" not in got[name][1], (name, got[name])
    # one stderr line per failure, in order, naming the file
    assert error_lines(err) == [f"fer-video: error: {got[n][1]}" for n in expected if expected[n][0] == "failed"]
    assert_complete(out, "a good")
    assert_complete(out, "b quiet")
    for name in ("c notes", "d empty", "e song", "f cut", "g blank"):
        assert_nothing_for(out, name)
    # the same folder with the bad files gone: exit code 0
    for name in ("c notes.mp4", "d empty.mov", "e song.m4v", "f cut.mp4", "g blank.avi"):
        (folder / name).unlink()
    code, stdout, err = cli(capsys, tiny_weights, str(folder), "--out", str(out), "--skip-existing")
    assert code == 0 and error_lines(err) == []
    assert set(pd.read_csv(out / "batch.csv")["status"]) == {"skipped"}


# ------------------------------------------------------------ still images and anamorphic (non-square) pixels


def _picture(path: Path, good: Path, ext: str) -> Path:
    """A still picture (PNG, JPEG: UNUSABLE above) of the good clip's first frame, named ``path`` (.mp4)."""
    image = video_props(good)["images"][0]
    ok, data = cv2.imencode(ext, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    assert ok
    path.write_bytes(data.tobytes())
    return path


@pytest.mark.parametrize("frames", [1, 5])
def test_gif_still_image_refused_animation_read(frames, tmp_path):
    """A GIF of one frame is a picture (refused, whatever its extension); an animated GIF is read as a video."""
    gif = tmp_path / "anim.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=160x120:rate=10", "-frames:v", frames, "-f", "gif", gif)
    if frames == 1:
        with pytest.raises(InputError, match=r"^anim\.mp4: a still image \(gif\), not a video$"):
            VideoReader(gif)
    else:
        with VideoReader(gif) as reader:
            assert len(list(reader)) == frames and reader.truncated_at is None


def _anamorphic(src: Path, folder: Path, rotation: int) -> Path:
    """``src`` with 4:3 pixels (shown 4/3 wider than stored); for 90/270 stored turned, with rotation metadata."""
    if not rotation:
        out = folder / "anamorphic.mp4"
        ffmpeg("-i", src, "-vf", "setsar=4/3", "-c:v", "libx264", "-crf", "12", "-c:a", "copy", out)
        return out
    stored = folder / "stored.mp4"  # turned a quarter: the stored pixels are 3:4
    ffmpeg("-i", src, "-vf", f"{ROTATIONS[rotation]},setsar=3/4", "-c:v", "libx264", "-crf", "12", stored)
    out = folder / f"anamorphic {rotation}.mp4"
    ffmpeg("-display_rotation", rotation, "-i", stored, "-c", "copy", out)
    return out


def _sar(path: Path) -> Fraction | None:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        return v.sample_aspect_ratio or v.codec_context.sample_aspect_ratio


@pytest.mark.parametrize("rotation", [0, 90])
def test_anamorphic_reader_and_writer_keep_the_pixel_shape(rotation, tmp_path, good_clip):
    src = _anamorphic(good_clip, tmp_path, rotation)
    assert _sar(src) == (Fraction(3, 4) if rotation else Fraction(4, 3))  # as stored
    with VideoReader(src) as reader:
        info = reader.info
        assert (info.width, info.height, info.rotation) == (160, 120, rotation)
        assert info.sample_aspect_ratio == Fraction(4, 3)  # of the upright frame
        writer = VideoWriter(tmp_path / "w.mp4", info.width, info.height, info.fps, 23, "ultrafast", Fraction(4, 3))
        for frame in reader:
            assert frame.image.shape == (120, 160, 3)  # frames are not resampled
            writer.write(frame.image, frame.time_s)
        writer.close()
    assert _sar(tmp_path / "w.mp4") == Fraction(4, 3) and video_props(tmp_path / "w.mp4")["size"] == (160, 120)
    with VideoReader(good_clip) as reader:
        assert reader.info.sample_aspect_ratio == 1


@pytest.mark.parametrize("rotation", [0, 90])
def test_anamorphic_annotated_output_keeps_the_displayed_shape(rotation, tmp_path, upright, fast_settings, models):
    """4:3 pixels in, 4:3 pixels out (with the audio muxed in), at the stored size of the upright frame;
    square pixels stay square (1:1 or unset)."""
    src, ref_out = upright
    ana = _anamorphic(src, tmp_path, rotation)
    r = annotate_video(ana, tmp_path / "out", fast_settings, models=models)
    assert (r.info.width, r.info.height, r.info.sample_aspect_ratio) == (160, 120, Fraction(4, 3))
    assert_complete(tmp_path / "out", ana.stem)
    props = video_props(r.outputs["video"])
    assert props["size"] == (160, 120) and props["rotation"] == 0 and props["audio"] == ["aac"]
    assert _sar(r.outputs["video"]) == Fraction(4, 3)
    assert _sar(output_paths(ref_out, "upright")["video"]) in (None, 0, 1)

"""The ELAN export: what is written reads back with pympi with the same tiers and annotations."""

from __future__ import annotations

from xml.etree import ElementTree

from test_episodes import CLASSES, make_timeline

from fer_video.elan import read_eaf_annotations, tier_name, write_eaf
from fer_video.episodes import EpisodeRules, episodes_from_timeline


def _episodes():
    tl = make_timeline({0: ["happy"] * 10 + ["sad"] * 12 + [None] * 10 + ["sad"] * 5, 2: ["neutral"] * 30})
    return episodes_from_timeline(tl, EpisodeRules())


def test_eaf_reads_back_with_one_tier_per_face_and_one_annotation_per_episode(tmp_path):
    video = tmp_path / "videos" / "clip one.mp4"
    video.parent.mkdir()
    video.write_bytes(b"")
    out = tmp_path / "results" / "clip one.eaf"
    out.parent.mkdir()
    episodes = _episodes()
    write_eaf(episodes, video, out, CLASSES)
    annotations = read_eaf_annotations(out)
    assert annotations == {
        "face 0": [(0, 1000, "happy"), (1000, 2200, "sad"), (3200, 3700, "sad")],
        "face 2": [(0, 3000, "neutral")],
    }
    expected = {
        tier_name(fid): [(round(e.start_s * 1000), round(e.end_s * 1000), e.emotion) for e in face.itertuples()]
        for fid, face in episodes.groupby("face_id")
    }
    assert annotations == expected


def test_eaf_is_version_3_with_the_video_linked_relatively_and_a_vocabulary(tmp_path):
    video = tmp_path / "clip.mov"
    video.write_bytes(b"")
    out = tmp_path / "out" / ".clip.eaf.part"
    out.parent.mkdir()
    write_eaf(_episodes(), video, out, CLASSES, final_path=out.parent / "clip.eaf")
    root = ElementTree.parse(out).getroot()
    assert root.tag == "ANNOTATION_DOCUMENT" and root.get("VERSION") == "3.0" and root.get("FORMAT") == "3.0"
    header = root.find("HEADER")
    assert header.get("TIME_UNITS") == "milliseconds"
    media = header.find("MEDIA_DESCRIPTOR")
    assert media.get("RELATIVE_MEDIA_URL") == "../clip.mov"
    assert media.get("MEDIA_URL") == video.resolve().as_uri()
    assert media.get("MIME_TYPE") == "video/quicktime"
    assert [t.get("TIER_ID") for t in root.iter("TIER")] == ["face 0", "face 2"]
    assert {t.get("LINGUISTIC_TYPE_REF") for t in root.iter("TIER")} == {"emotion"}
    entries = [v.text for v in root.iter("CVE_VALUE")]
    assert entries == CLASSES
    last = {p.get("NAME"): p.text for p in header.iter("PROPERTY")}["lastUsedAnnotation"]
    ids = [a.get("ANNOTATION_ID") for a in root.iter("ALIGNABLE_ANNOTATION")]
    assert len(set(ids)) == 4 and last == str(max(int(i[1:]) for i in ids))


def test_a_video_without_faces_gives_a_document_without_tiers(tmp_path):
    video = tmp_path / "v.mp4"
    video.write_bytes(b"")
    empty = episodes_from_timeline(make_timeline({0: [None] * 4}))
    write_eaf(empty, video, tmp_path / "v.eaf", CLASSES)
    assert read_eaf_annotations(tmp_path / "v.eaf") == {}
    media = ElementTree.parse(tmp_path / "v.eaf").getroot().find("HEADER/MEDIA_DESCRIPTOR")
    assert media.get("RELATIVE_MEDIA_URL") == "./v.mp4"

"""Episodes from synthetic timelines: runs, merging of short stretches, absences, agreement with the timeline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fer_video.episodes import (
    EPISODE_COLUMNS,
    EpisodeRules,
    episode_counts,
    episodes_from_csv,
    episodes_from_timeline,
    read_episodes,
    write_episodes,
)
from fer_video.timeline import timeline_columns
from fer_video.training.data import FER2013_CLASSES

CLASSES = list(FER2013_CLASSES)
FPS = 10.0


def make_timeline(faces: dict[int, list[str | None]], fps: float = FPS, peak: float = 0.8) -> pd.DataFrame:
    """A timeline as the CSV holds it: ``faces[id][frame]`` is the smoothed emotion (None: not on that frame)."""
    n = max(len(v) for v in faces.values())
    rows = []
    for frame in range(n):
        here = [(fid, e[frame]) for fid, e in sorted(faces.items()) if frame < len(e) and e[frame] is not None]
        if not here:
            rows.append([frame, frame / fps] + [None] * (len(timeline_columns(CLASSES)) - 2))
        for fid, emotion in here:
            probs = np.full(len(CLASSES), (1 - peak) / (len(CLASSES) - 1))
            probs[CLASSES.index(emotion)] = peak
            box = [10.0, 10.0, 50.0, 50.0]
            rows.append([frame, frame / fps, fid, *box, 0.99, emotion, peak, *probs, *probs])
    df = pd.DataFrame(rows, columns=timeline_columns(CLASSES))
    df["face_id"] = df["face_id"].astype("Int64")
    return df


def run(faces, min_episode_s=0.5, max_gap_s=0.5, fps=FPS):
    return episodes_from_timeline(make_timeline(faces, fps), EpisodeRules(min_episode_s, max_gap_s))


def test_one_steady_face_is_one_episode_ending_where_its_last_frame_ends():
    ep = run({0: ["happy"] * 20})
    assert list(ep.columns) == EPISODE_COLUMNS
    assert ep.to_dict("records") == [
        {
            "face_id": 0,
            "emotion": "happy",
            "start_s": 0.0,
            "end_s": 2.0,
            "duration_s": 2.0,
            "start_frame": 0,
            "end_frame": 19,
            "frames": 20,
            "mean_confidence": 0.8,
            "peak_confidence": 0.8,
        }
    ]


def test_a_real_change_makes_two_episodes_that_touch():
    ep = run({0: ["happy"] * 10 + ["sad"] * 12})
    assert ep[["emotion", "start_frame", "end_frame", "frames"]].values.tolist() == [
        ["happy", 0, 9, 10],
        ["sad", 10, 21, 12],
    ]
    assert ep["end_s"].iloc[0] == ep["start_s"].iloc[1] == 1.0


def test_a_flicker_shorter_than_min_episode_is_merged_and_zero_keeps_it():
    faces = {0: ["happy"] * 10 + ["sad"] * 2 + ["happy"] * 10}
    merged = run(faces)
    assert merged[["emotion", "frames", "duration_s"]].values.tolist() == [["happy", 22, 2.2]]
    # the merged sad rows count in the confidence with their probability of happy
    assert merged["mean_confidence"].iloc[0] == pytest.approx((20 * 0.8 + 2 * 0.2 / 6) / 22, abs=1e-4)
    assert merged["peak_confidence"].iloc[0] == 0.8
    every = run(faces, min_episode_s=0)
    assert every["emotion"].tolist() == ["happy", "sad", "happy"]


def test_a_short_stretch_between_two_emotions_joins_the_longer_neighbour():
    ep = run({0: ["happy"] * 8 + ["fear"] * 3 + ["sad"] * 12})
    assert ep[["emotion", "start_frame", "end_frame"]].values.tolist() == [["happy", 0, 7], ["sad", 8, 22]]


def test_a_chain_of_flickers_settles_on_the_emotion_of_most_rows():
    # four stretches all shorter than 0.5 s: they merge into one, labelled with the emotion of most rows
    ep = run({0: ["angry"] * 2 + ["sad"] * 4 + ["angry"] * 1 + ["sad"] * 2})
    assert ep[["emotion", "frames"]].values.tolist() == [["sad", 9]]


def test_a_face_that_leaves_and_returns_under_its_id_starts_a_new_episode():
    # absent for 1 s (frames 10-19) > max_gap 0.5 s: two episodes although the emotion is the same
    ep = run({0: ["happy"] * 10 + [None] * 10 + ["happy"] * 10})
    assert ep[["start_frame", "end_frame", "start_s", "end_s"]].values.tolist() == [
        [0, 9, 0.0, 1.0],
        [20, 29, 2.0, 3.0],
    ]


def test_a_missed_detection_shorter_than_max_gap_keeps_the_episode():
    ep = run({0: ["happy"] * 10 + [None] * 3 + ["happy"] * 10})
    assert ep[["start_frame", "end_frame", "frames"]].values.tolist() == [[0, 22, 20]]


def test_short_stretches_are_not_merged_across_an_absence():
    # a short sad appearance after the face came back stays its own episode: nothing of its presence to join
    ep = run({0: ["happy"] * 10 + [None] * 10 + ["sad"] * 2})
    assert ep[["emotion", "frames"]].values.tolist() == [["happy", 10], ["sad", 2]]


def test_faces_are_sorted_by_face_then_time_and_each_keeps_its_own_episodes():
    ep = run({3: ["sad"] * 10 + ["happy"] * 10, 1: [None] * 5 + ["neutral"] * 15})
    assert ep[["face_id", "emotion", "start_frame"]].values.tolist() == [
        [1, "neutral", 5],
        [3, "sad", 0],
        [3, "happy", 10],
    ]
    assert episode_counts(ep) == {
        "1": {"count": 1, "per_emotion": {"neutral": 1}, "seconds_per_emotion": {"neutral": 1.5}},
        "3": {"count": 2, "per_emotion": {"happy": 1, "sad": 1}, "seconds_per_emotion": {"happy": 1.0, "sad": 1.0}},
    }


def test_a_timeline_without_faces_has_no_episodes(tmp_path):
    ep = episodes_from_timeline(make_timeline({0: [None] * 5}))
    assert ep.empty and list(ep.columns) == EPISODE_COLUMNS
    assert episode_counts(ep) == {}
    write_episodes(ep, tmp_path / "e.csv")
    assert read_episodes(tmp_path / "e.csv").empty


def test_variable_frame_rate_times_come_from_the_timeline():
    tl = make_timeline({0: ["happy"] * 6 + ["sad"] * 6})
    tl["time_s"] = [0.0, 0.1, 0.15, 0.4, 0.5, 0.9, 1.0, 1.1, 1.3, 1.4, 1.5, 1.6]
    ep = episodes_from_timeline(tl, EpisodeRules(min_episode_s=0))
    assert ep[["start_s", "end_s"]].values.tolist() == [[0.0, 1.0], [1.0, 1.7]]  # the last frame: median step


def test_episodes_from_a_timeline_csv_read_only_what_they_need(tmp_path):
    tl = make_timeline({0: ["happy"] * 10 + ["sad"] * 10, 1: [None] * 4 + ["neutral"] * 16})
    tl.to_csv(tmp_path / "t.timeline.csv", index=False)
    rules = EpisodeRules()
    from_csv = episodes_from_csv(tmp_path / "t.timeline.csv", rules, CLASSES)
    pd.testing.assert_frame_equal(from_csv, episodes_from_timeline(tl, rules))


def test_episodes_csv_round_trips(tmp_path):
    ep = run({0: ["happy"] * 10 + ["sad"] * 10, 1: ["neutral"] * 20})
    write_episodes(ep, tmp_path / "x.episodes.csv")
    back = read_episodes(tmp_path / "x.episodes.csv")
    pd.testing.assert_frame_equal(back, ep)


def _random_faces(rng: np.random.Generator, n: int) -> dict[int, list[str | None]]:
    faces = {}
    for fid in range(3):
        seq, current = [], rng.choice(CLASSES)
        for _ in range(n):
            if rng.random() < 0.15:
                current = rng.choice(CLASSES)
            seq.append(None if rng.random() < 0.05 else str(current))
        for gap in rng.integers(0, n - 8, size=2):  # two absences of 0.8 s
            seq[gap : gap + 8] = [None] * 8
        faces[fid] = seq
    return faces


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("min_episode_s", [0.0, 0.3, 0.5, 1.5])
def test_random_timelines_agree_with_their_episodes(seed, min_episode_s):
    rng = np.random.default_rng(seed)
    tl = make_timeline(_random_faces(rng, 120))
    rules = EpisodeRules(min_episode_s=min_episode_s, max_gap_s=0.5)
    ep = episodes_from_timeline(tl, rules)
    faces = tl.dropna(subset=["face_id"])
    assert ep["frames"].sum() == len(faces)  # every face row in exactly one episode
    assert ep.equals(ep.sort_values(["face_id", "start_s"]).reset_index(drop=True))
    for fid, face_eps in ep.groupby("face_id"):
        rows = faces[faces["face_id"] == fid]
        starts, ends = face_eps["start_s"].to_numpy(), face_eps["end_s"].to_numpy()
        assert (starts[1:] >= ends[:-1] - 1e-9).all()  # no overlap
        touching = starts[1:] - ends[:-1] <= rules.max_gap_s + 1e-9  # same presence
        same = face_eps["emotion"].to_numpy()[1:] == face_eps["emotion"].to_numpy()[:-1]
        assert not (touching & same).any()  # maximal: neighbours in one presence differ
        for e in face_eps.itertuples():
            inside = rows[(rows["frame"] >= e.start_frame) & (rows["frame"] <= e.end_frame)]
            assert len(inside) == e.frames
            counts = inside["emotion"].value_counts()
            assert counts[e.emotion] == counts.max()  # the emotion of most of its rows
        short = (face_eps["duration_s"] < min_episode_s - 1e-9).to_numpy()
        alone = np.ones(len(face_eps), bool)
        alone[1:] &= ~touching
        alone[:-1] &= ~touching
        assert (alone[short]).all()  # a short episode is a whole (short) presence
        if min_episode_s == 0:
            changes = (rows["emotion"] != rows["emotion"].shift()).sum()
            assert len(face_eps) >= changes  # every change kept

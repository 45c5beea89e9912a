"""ELAN export: the emotion episodes as an ELAN 3.0 annotation document (``NAME.eaf``), through pympi-ling.

One tier per face (``face 0``, ``face 1``...), one annotation per episode (value: the emotion; times in
milliseconds of the source video), the input video linked by an absolute URL and a path relative to the
document (ELAN tries the relative one when the folder was moved). The tiers share a linguistic type whose
controlled vocabulary is the model's classes, so a coder who corrects a label in ELAN picks from a list.
"""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Sequence
from pathlib import Path
from xml.etree import ElementTree

import pandas as pd

EAF_VERSION = "3.0"
LINGUISTIC_TYPE = "emotion"
VOCABULARY = "emotions"


def tier_name(face_id: int) -> str:
    return f"face {int(face_id)}"


def _media(eaf, video: Path, eaf_path: Path) -> None:
    video = video.resolve()
    relative = os.path.relpath(video, eaf_path.resolve().parent).replace(os.sep, "/")
    relative = relative if relative.startswith("../") else f"./{relative}"
    mime = mimetypes.guess_type(video.name)[0] or "video/*"
    eaf.add_linked_file(video.as_uri(), relpath=relative, mimetype=mime)


def build_eaf(episodes: pd.DataFrame, video: Path, eaf_path: Path, classes: Sequence[str], author: str = "fer-video"):
    """A ``pympi.Elan.Eaf`` of ``episodes`` (``episodes.EPISODE_COLUMNS``) linked to ``video``."""
    from pympi.Elan import Eaf  # optional: only runs that ask for --elan import it

    eaf = Eaf(author=author)
    eaf.adocument.update(
        {
            "VERSION": EAF_VERSION,
            "FORMAT": EAF_VERSION,
            "xsi:noNamespaceSchemaLocation": f"http://www.mpi.nl/tools/elan/EAFv{EAF_VERSION}.xsd",
        }
    )
    eaf.header.update({"MEDIA_FILE": "", "TIME_UNITS": "milliseconds"})
    eaf.remove_tier("default")
    _media(eaf, video, eaf_path)
    eaf.add_language("und", lang_label="undetermined")
    eaf.add_controlled_vocabulary(VOCABULARY)
    eaf.add_cv_description(VOCABULARY, "und", "facial expressions, the classes of the emotion model")
    for i, name in enumerate(classes):
        eaf.add_cv_entry(VOCABULARY, f"cveid{i}", [(name, "und", None)])
    eaf.add_linguistic_type(
        LINGUISTIC_TYPE,
        param_dict={
            "LINGUISTIC_TYPE_ID": LINGUISTIC_TYPE,
            "TIME_ALIGNABLE": "true",
            "GRAPHIC_REFERENCES": "false",
            "CONTROLLED_VOCABULARY_REF": VOCABULARY,
        },
    )
    for fid, face in episodes.groupby("face_id", sort=True):
        tier = tier_name(fid)
        eaf.add_tier(tier, ling=LINGUISTIC_TYPE)
        starts = (face["start_s"] * 1000).round().astype("int64")
        ends = (face["end_s"] * 1000).round().astype("int64")
        for start, end, emotion in zip(starts, ends, face["emotion"], strict=True):
            if end > start:  # ELAN has no annotation of zero length (an episode shorter than 0.5 ms)
                eaf.add_annotation(tier, int(start), int(end), str(emotion))
    # where ELAN numbers the annotations a coder adds from (pympi leaves 0)
    eaf.properties = [("lastUsedAnnotation", max((int(a[1:]) for a in eaf.annotations), default=0))]
    return eaf


def write_eaf(
    episodes: pd.DataFrame, video: Path, path: Path, classes: Sequence[str], final_path: Path | None = None
) -> None:
    """Write the document to ``path`` (a temporary name; ``final_path``, where it will be renamed to, sets the
    relative path of the video)."""
    from pympi.Elan import to_adocument

    eaf = build_eaf(episodes, video, final_path or path, classes)
    ElementTree.ElementTree(to_adocument(eaf, pretty=True)).write(str(path), xml_declaration=True, encoding="UTF-8")


def read_eaf_annotations(path: Path) -> dict[str, list[tuple[int, int, str]]]:
    """Tier -> its annotations ``(start_ms, end_ms, value)`` in time order, read back with pympi."""
    from pympi.Elan import Eaf

    eaf = Eaf(str(path))
    return {t: sorted(eaf.get_annotation_data_for_tier(t)) for t in eaf.get_tier_names()}

"""How the Video tab shows a result: the emotion plot, the face picker and the per-face table (one order, brief
tracks hidden unless asked for, a row click picks the face), and every result emptied again."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import gradio as gr
import pandas as pd

from fer_video.draw import COLOURS
from fer_video.ui.faces import Faces, brief_note, shown_faces, shown_table
from fer_video.ui.hooks import PLOT_ID
from fer_video.ui.jobs import AnnotateOutput, colour_map

#: shown above the plot once there is a result
VIEW_HELP = (
    "Labels too small? The annotated video's full-screen button shows it as large as the screen. "
    "The red line on the plot follows the video; click the plot to jump the video to that moment."
)


@dataclass(frozen=True)
class RunView:
    """What the page keeps of the last result (in a ``gr.State``): every face's plot points, the table, the faces."""

    plot: pd.DataFrame
    table: pd.DataFrame
    faces: Faces


def emotion_plot() -> gr.LinePlot:
    """The emotion-over-time plot, created empty with ``None``.

    The browser builds the chart (axis types, the legend's classes, the tooltip's fields) from the first
    value it is given and afterwards only swaps the data in; an empty DataFrame would fix both axes as
    categories, so the plot starts with no value and every update is ``plot_value``. It sits in the results
    box, which is hidden until there is a result: no empty axes or stray legend title before a run."""
    return gr.LinePlot(
        None,
        x="time_s",
        y="probability",
        color="emotion",
        title="Emotion over time",
        x_title="time (s)",
        y_title="probability (smoothed)",
        color_title="emotion",
        y_lim=[0, 1],
        tooltip="all",
        height=300,
        color_map=colour_map(list(COLOURS)),
        scale=4,
        elem_id=PLOT_ID,
    )


def plot_value(data: pd.DataFrame | None, face: str | None) -> pd.DataFrame | None:
    """One face's points with float ``time_s``/``probability`` (quantitative axes), or None: no plot."""
    if data is None or not face:
        return None
    shown = data[data["face"] == face]
    if shown.empty:
        return None
    return shown.astype({"time_s": float, "probability": float, "emotion": str, "face": str}).reset_index(drop=True)


def table_value(view: RunView, show_all: bool) -> gr.Dataframe | None:
    rows = shown_table(view.table, view.faces, show_all)
    if rows.empty:
        return None
    kinds = ["markdown" if c == "face" else "number" if pd.api.types.is_numeric_dtype(rows[c]) else "str" for c in rows]
    return gr.Dataframe(value=rows, datatype=kinds)


def run_offset(summary: dict[str, Any]) -> float:
    """The source time at the annotated video's 0: a time range's first frame when it has a start, else 0."""
    r = summary.get("range") or {}
    return float(r.get("first_s") or 0.0) if r.get("start_s") else 0.0


def cleared(status: str) -> tuple:
    """Every result emptied and the results box hidden, with this status line (in ``video_tab``'s order)."""
    hidden = gr.DownloadButton(value=None, visible=False)
    no_faces = gr.Dropdown(choices=[], value=None)
    box = gr.Column(visible=False)
    no_brief = gr.Checkbox(value=False, visible=False)
    return None, status, no_faces, None, None, hidden, hidden, hidden, hidden, None, None, hidden, box, no_brief, 0.0


def shown(out: AnnotateOutput) -> tuple:
    r = out.result
    faces = out.face_list or Faces(out.faces)
    view = RunView(out.plot, out.table, faces)
    choices = shown_faces(faces)
    first = choices[0] if choices else None
    png = r.outputs.get("plot")
    return (
        str(r.outputs["video"]),
        out.message,
        gr.Dropdown(choices=choices, value=first),
        plot_value(out.plot, first),
        table_value(view, False),
        gr.DownloadButton(value=str(r.outputs["csv"]), visible=True),
        gr.DownloadButton(value=str(r.outputs["summary"]), visible=True),
        gr.DownloadButton(value=str(r.outputs["video"]), visible=True),
        gr.DownloadButton(value=str(png), visible=True) if png and png.is_file() else gr.DownloadButton(visible=False),
        view,
        out.episodes if not out.episodes.empty else None,
        gr.DownloadButton(value=str(r.outputs["episodes"]), visible=True),
        gr.Column(visible=bool(out.faces)),
        gr.Checkbox(value=False, visible=bool(faces.brief), info=brief_note(faces)),
        run_offset(r.summary),
    )


def on_face(face: str | None, view: RunView | None) -> pd.DataFrame | None:
    """The plot of the face picked (every face's points are kept in the ``RunView``)."""
    return plot_value(view.plot if view else None, face)


def on_show_all(show_all: bool, view: RunView | None, face: str | None) -> tuple:
    """Brief faces shown or hidden: the picker's choices and the table follow (the face picked stays if it can)."""
    if view is None:
        return gr.skip(), gr.skip()
    choices = shown_faces(view.faces, show_all)
    keep = face if face in choices else (choices[0] if choices else None)
    return gr.Dropdown(choices=choices, value=keep), table_value(view, show_all)


def on_row(view: RunView | None, show_all: bool, evt: gr.SelectData) -> Any:
    """A click on a table row picks its face (the plot follows the picker)."""
    if view is None:
        return gr.skip()
    face = row_face(evt.row_value, evt.index, shown_faces(view.faces, show_all))
    return gr.Dropdown(value=face) if face else gr.skip()


def row_face(row: list[Any] | None, index: Any, order: list[str]) -> str | None:
    """The face of a clicked row: its face cell ("![face 3](...) face 3"), else its position in ``order``."""
    if row:
        found = re.search(r"(face \d+)\s*$", str(row[0]))
        if found and found.group(1) in order:
            return found.group(1)
    k = index[0] if isinstance(index, (list, tuple)) and index else None
    return order[k] if isinstance(k, int) and 0 <= k < len(order) else None

"""The page's few browser-side hooks (JavaScript run once when the page loads), for what Gradio's components do
not offer: a marker on the emotion plot at the annotated video's current time, a click on the plot seeking the
video there, and the webcam's stopped state (the webcam component has no stop event).

They find the components by ``elem_id`` and read what the browser drew: the plot's x axis (its domain from the
axis' aria label, its pixels from the plot area), the video element, the webcam's start/stop button. Each check
runs again every few hundred milliseconds, so a redrawn plot or a replaced video element is picked up."""

from __future__ import annotations

PLOT_ID = "emotion-plot"
VIDEO_ID = "video-out"
OFFSET_ID = "plot-offset"  # a hidden number: the source time (s) at the annotated video's 0 (a time range's start)
CAM_ID = "cam"
CAM_OUT_ID = "cam-out"
CAM_STARTED_ID = "cam-started"  # hidden buttons: the server's started and stopped handlers
CAM_STOPPED_ID = "cam-stopped"
MARKER_ID = "fer-plot-marker"

PAGE_JS = rf"""
() => {{
  if (window.__ferVideoHooks) return;
  window.__ferVideoHooks = true;
  const $ = (sel) => document.querySelector(sel);

  // the plot's x scale in page pixels: the x axis' domain (its aria label) over the plot area (the root
  // group's background, which spans the scale's range)
  const xScale = () => {{
    const svg = $('#{PLOT_ID} svg');
    const area = svg && svg.querySelector('g.role-frame.root > g > path.background');
    const x = svg && [...svg.querySelectorAll('g.role-axis')].find(
      (a) => (a.getAttribute('aria-label') || '').startsWith('X-axis'));
    if (!area || !x) return null;
    const m = /values from (\S+) to (\S+?)\.?$/.exec((x.getAttribute('aria-label') || '').replace(/,/g, ''));
    if (!m) return null;
    const lo = parseFloat(m[1]), hi = parseFloat(m[2]), r = area.getBoundingClientRect();
    if (!(hi > lo) || r.width <= 0) return null;
    return {{lo, hi, left: r.left, width: r.width, top: r.top, bottom: r.bottom}};
  }};
  const video = () => $('#{VIDEO_ID} video');
  const offset = () => {{
    const e = $('#{OFFSET_ID} input');
    const v = e ? parseFloat(e.value) : 0;
    return Number.isFinite(v) ? v : 0;
  }};

  const drawMarker = () => {{
    const plot = $('#{PLOT_ID}');
    let marker = $('#{MARKER_ID}');
    const v = video(), s = xScale();
    const t = v && Number.isFinite(v.currentTime) ? v.currentTime + offset() : NaN;
    if (!plot || !s || !v || !(v.readyState >= 1) || !(t >= s.lo && t <= s.hi)) {{
      if (marker) marker.style.display = 'none';
      return;
    }}
    if (!marker || marker.parentElement !== plot) {{
      if (marker) marker.remove();
      marker = document.createElement('div');
      marker.id = '{MARKER_ID}';
      marker.setAttribute('aria-hidden', 'true');
      plot.appendChild(marker);
    }}
    const box = plot.getBoundingClientRect();
    marker.style.display = 'block';
    marker.style.left = (s.left - box.left + (t - s.lo) / (s.hi - s.lo) * s.width) + 'px';
    marker.style.top = (s.top - box.top) + 'px';
    marker.style.height = Math.max(s.bottom - s.top, 10) + 'px';
    marker.dataset.time = t.toFixed(3);
  }};

  // a click on the plot's area seeks the annotated video to that time (the legend is outside the x range)
  document.addEventListener('click', (ev) => {{
    if (!ev.target.closest || !ev.target.closest('#{PLOT_ID} svg')) return;
    const v = video(), s = xScale();
    if (!v || !s || ev.clientX < s.left || ev.clientX > s.left + s.width) return;
    const t = s.lo + (ev.clientX - s.left) / s.width * (s.hi - s.lo) - offset();
    const end = Number.isFinite(v.duration) ? v.duration : t;
    v.currentTime = Math.min(Math.max(t, 0), end);
    drawMarker();
  }});
  for (const kind of ['timeupdate', 'seeked', 'loadedmetadata', 'emptied']) {{
    document.addEventListener(kind, (ev) => {{ if (ev.target === video()) drawMarker(); }}, true);
  }}

  // the webcam: its button shows "stop recording" while streaming. When that starts the server is told (a fresh
  // session); when it ends (Stop, or the time limit) the annotated image is greyed at once and the server is
  // told (it clears the image, says "Stopped" and drops the frames still on their way)
  let streaming = false;
  const press = (id) => {{ const b = $('#' + id); if (b) b.click(); }};
  const watchCamera = () => {{
    const now = !!$('#{CAM_ID} [title="stop recording"]');
    const out = $('#{CAM_OUT_ID}');
    if (now && !streaming) {{
      if (out) out.classList.remove('fer-stopped');
      press('{CAM_STARTED_ID}');
    }}
    if (!now && streaming) {{
      if (out) out.classList.add('fer-stopped');
      press('{CAM_STOPPED_ID}');
    }}
    streaming = now;
  }};
  setInterval(() => {{ drawMarker(); watchCamera(); }}, 300);
}}
"""

CSS = f"""
#{PLOT_ID} {{position: relative}}
#{MARKER_ID} {{position: absolute; width: 0; border-left: 2px solid #d00; pointer-events: none; z-index: 5}}
#{PLOT_ID} svg {{cursor: crosshair}}
#{CAM_OUT_ID}.fer-stopped img {{opacity: 0.25; filter: grayscale(1)}}
"""

"""CPU-time micro-benchmarks of the two models, for a machine too busy for wall-clock numbers.

    python benchmarks/micro.py detect [VIDEO] [--sides 480 640 960] [--min-faces 20 40]   # MTCNN CPU ms/frame
    python benchmarks/micro.py classify                                # ResNet18 ms of CPU per face crop
    python benchmarks/micro.py cascade [VIDEO...] [--batches 1 2 4 8]  # MTCNN: facenet-pytorch vs fer_video.mtcnn
    python benchmarks/micro.py train-step [--threads 2]               # ResNet18 training step, fp32 vs bf16 autocast
    python benchmarks/micro.py classify-precision VIDEO...            # inference fp32 vs bf16 on real face crops
    python benchmarks/micro.py classify-models VIDEO... --weights A.pt,B.pt   # CPU ms per crop of each model
    python benchmarks/micro.py encode VIDEO                           # libx264 slice vs frame threads (wall, CPU)
    python benchmarks/micro.py detect-ab VIDEO --rev REV              # fer_video/mtcnn.py at REV vs now (CPU)
    python benchmarks/micro.py classify-ort VIDEO...                  # fp32 classifier: PyTorch vs ONNX Runtime
    python benchmarks/micro.py mtcnn-precision                        # MTCNN's three nets: fp32 vs bf16 (CPU ms)
    python benchmarks/micro.py decode-rgb VIDEO...                    # YUV -> RGB after decoding: libswscale vs OpenCV

``time.process_time`` counts the CPU this process used, whatever share of the machine it got, so the
numbers hold on a loaded machine (wall-clock ones do not). One torch thread: per-core cost.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def detect(video: Path, sides: list[int], min_faces: list[int], n: int = 4) -> None:
    from fer_video.detect import FaceDetector
    from fer_video.video import VideoReader

    frames = []
    with VideoReader(video) as r:
        for f in r:
            frames.append(f.image)
            if len(frames) == n:
                break
    for side in sides:
        for min_face in min_faces:
            for channels_last in (False, True):
                d = FaceDetector(torch.device("cpu"), min_face, 0.9, side, channels_last=channels_last)
                d.detect(frames[:1])  # builds MTCNN
                c = time.process_time()
                out = d.detect(frames)
                c = time.process_time() - c
                layout = "channels_last" if channels_last else "NCHW"
                print(
                    f"max_side {side} min_face {min_face} {layout}: cpu {c / n * 1000:.0f} ms/frame "
                    f"faces {[len(o) for o in out]}",
                    flush=True,
                )


def classify(n_crops: int = 32, repeat: int = 3) -> None:
    from fer_video.classify import EmotionClassifier
    from fer_video.stages import default_weights

    clf = EmotionClassifier.from_weights(str(default_weights()), torch.device("cpu"), 64, True)
    crops = np.random.default_rng(0).integers(0, 255, (n_crops, 48, 48, 1), dtype=np.uint8)

    def nchw_tta(c: np.ndarray) -> np.ndarray:  # the same maths without channels_last
        x = torch.from_numpy(c).permute(0, 3, 1, 2).float() / 255.0
        x = ((x - clf._mean) / clf._std).contiguous()
        with torch.inference_mode():
            logits = clf.model(torch.cat([x, torch.flip(x, dims=[3])]))
        p = torch.softmax(logits.float(), 1)
        return ((p[: len(x)] + p[len(x) :]) / 2).numpy()

    def bench(name: str, fn) -> np.ndarray:
        p = fn(crops)
        c = time.process_time()
        for _ in range(repeat):
            p = fn(crops)
        c = (time.process_time() - c) / repeat / n_crops * 1000
        print(f"{name}: cpu {c:.1f} ms/crop", flush=True)
        return p

    ref = bench("channels_last tta", clf.predict)
    clf.tta = False
    bench("channels_last no-tta", clf.predict)
    clf.tta = True
    clf.model = clf.model.to(memory_format=torch.contiguous_format)
    p = bench("nchw tta", nchw_tta)
    print("max |p - p_channels_last| =", float(np.abs(p - ref).max()))


def _detection_frames(video: Path, every: int = 8, n: int = 24, side: int = 640) -> np.ndarray:
    """``n`` frames ``every`` apart, downscaled to ``side`` px as the pipeline does before detection."""
    import cv2

    from fer_video.video import VideoReader

    frames = []
    with VideoReader(video) as r:
        for f in r:
            if f.index % every == 0:
                s = min(1.0, side / max(f.image.shape[:2]))
                size = (round(f.image.shape[1] * s), round(f.image.shape[0] * s))
                frames.append(cv2.resize(f.image, size, interpolation=cv2.INTER_AREA) if s < 1 else f.image)
            if len(frames) == n:
                break
    return np.stack(frames)


def cascade(videos: list[Path], batches: list[int], min_size: int = 20) -> None:
    """facenet-pytorch's ``MTCNN.detect`` vs ``fer_video.mtcnn.MTCNNCascade`` on the same frames: CPU ms per
    frame (8 frames per call), the boxes' agreement, then the cascade's cost per frame by frames per call."""
    from facenet_pytorch import MTCNN

    from fer_video.mtcnn import MTCNNCascade
    from fer_video.track import iou_matrix

    cas = MTCNNCascade(torch.device("cpu"))
    ref = MTCNN(keep_all=True, min_face_size=min_size, post_process=False)
    for net in (ref.pnet, ref.rnet, ref.onet):
        net.to(memory_format=torch.channels_last)  # as fer-video ran it before
    for video in videos:
        frames = _detection_frames(video)
        with torch.inference_mode():
            c = time.process_time()
            theirs = [b for s in range(0, len(frames), 8) for b in ref.detect(frames[s : s + 8])[0]]
            c_ref = time.process_time() - c
            c = time.process_time()
            ours = [b for s in range(0, len(frames), 8) for b in cas.detect(frames[s : s + 8], min_size)]
            c_ours = time.process_time() - c
        ious = []
        for t, o in zip(theirs, ours, strict=True):
            t = np.zeros((0, 4)) if t is None else np.asarray(t, np.float32)
            if len(t) != len(o):
                ious.append(0.0)
            elif len(t):
                ious.extend(iou_matrix(t, o[:, :4]).max(axis=1).tolist())
        print(
            f"{video.name} {frames.shape[2]}x{frames.shape[1]}: facenet-pytorch {c_ref / len(frames) * 1000:.1f}, "
            f"fer_video.mtcnn {c_ours / len(frames) * 1000:.1f} CPU-ms/frame; {len(ious)} boxes, "
            f"min IoU {min(ious, default=1.0):.4f}",
            flush=True,
        )
        for b in batches:
            cas.detect(frames[:b], min_size)
            w, c = time.perf_counter(), time.process_time()
            for s in range(0, len(frames), b):
                cas.detect(frames[s : s + b], min_size)
            w, c = time.perf_counter() - w, time.process_time() - c
            per = 1000 / len(frames)
            print(f"  {b} frames per call: {w * per:.1f} ms wall, {c * per:.1f} CPU-ms per frame")


def train_step(batch: int = 128, repeat: int = 5) -> None:
    """CPU seconds of one training step (forward, backward, SGD) of our ResNet18 on a 48 px batch, and of one
    teacher forward pass, in fp32 and in bf16 autocast (what ``fer-video train --precision`` chooses between)."""
    from fer_video.device import native_bf16
    from fer_video.model import build_model

    torch.manual_seed(0)
    model = build_model(7).to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    x = torch.randn(batch, 1, 48, 48).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 7, (batch,))
    print(f"native bf16 (AMX or bf16 GPU): {native_bf16(torch.device('cpu'))}; batch {batch}", flush=True)

    def step(dtype) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype is not None):
            loss = torch.nn.functional.cross_entropy(model(x).float(), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def forward(dtype) -> None:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype is not None):
            model(x)

    for name, fn in (("train step", step), ("teacher forward", forward)):
        for dtype in (None, torch.bfloat16):
            model.train(fn is step)
            fn(dtype), fn(dtype)  # warm-up: oneDNN builds its kernels on the first calls
            c = time.process_time()
            for _ in range(repeat):
                fn(dtype)
            c = (time.process_time() - c) / repeat
            print(f"{name} {'bf16' if dtype else 'fp32'}: cpu {c:.2f} s", flush=True)


def _real_crops(videos: list[Path], every: int = 8, classifiers=None) -> np.ndarray | list[np.ndarray]:
    """The shipped model's crops of the faces MTCNN finds on every ``every``-th frame of ``videos``; with
    ``classifiers``, each one's own crops of the same faces (a list)."""
    from fer_video.classify import EmotionClassifier
    from fer_video.detect import FaceDetector
    from fer_video.stages import default_weights
    from fer_video.video import VideoReader

    clfs = classifiers or [EmotionClassifier.from_weights(str(default_weights()), torch.device("cpu"), 64, False)]
    detector = FaceDetector(torch.device("cpu"), 20, 0.9, 640)
    crops: list[list[np.ndarray]] = [[] for _ in clfs]
    for video in videos:
        with VideoReader(video) as r:
            for f in r:
                if f.index % every == 0:
                    boxes = detector.detect([f.image])[0].xyxy
                    for mine, clf in zip(crops, clfs, strict=True):
                        mine.append(clf.crops(f.image, boxes))
    joined = [np.concatenate(c) for c in crops]
    return joined if classifiers else joined[0]


def classify_models(videos: list[Path], weights: list[str], repeat: int = 3) -> None:
    """CPU ms per face crop of the classifier (default precision) built from each weights file, on the same real
    faces (each model's own crop rule), interleaved: single crop, flip TTA, and ten-crop for models trained on
    centre squares (``fer-video train --crop``); argmax agreement with the first model."""
    from fer_video.classify import EmotionClassifier

    cpu = torch.device("cpu")
    runs = {}
    for w in weights:
        clf = EmotionClassifier.from_weights(w, cpu, 64, False, "auto")
        runs[f"{Path(w).parent.name}/{Path(w).name} single"] = (clf, False)
        runs[f"{Path(w).parent.name}/{Path(w).name} flip"] = (clf, True)
        if clf.card.resize_size:
            ten = EmotionClassifier.from_weights(w, cpu, 64, False, "auto", ten_crop=True)
            runs[f"{Path(w).parent.name}/{Path(w).name} ten-crop"] = (ten, False)
    clfs = list(dict.fromkeys(c for c, _ in runs.values()))
    crops = dict(zip(clfs, _real_crops(videos, classifiers=clfs), strict=True))
    print(f"{len(next(iter(crops.values())))} crops from {len(videos)} videos", flush=True)
    cost, probs = dict.fromkeys(runs, 0.0), {}
    for clf, tta in runs.values():
        clf.predict(crops[clf][:64], tta)  # warm-up: oneDNN builds its kernels on the first calls
    for _ in range(repeat):
        for name, (clf, tta) in runs.items():
            c = time.process_time()
            probs[name] = clf.predict(crops[clf], tta)
            cost[name] += time.process_time() - c
    first = next(iter(runs))
    for name in runs:
        agree = float((probs[first].argmax(1) == probs[name].argmax(1)).mean())
        per_crop = cost[name] / repeat / len(probs[name]) * 1000
        print(f"{name}: {per_crop:.2f} CPU-ms per crop; argmax agreement with {first}: {agree:.3f}", flush=True)


def classify_precision(videos: list[Path], repeat: int = 3) -> None:
    """The shipped model on real face crops: the classifier in fp32 and in bf16 (BatchNorm folded, bf16 weights)
    against the plain model in fp32 (the reference) and in bf16 autocast (what the classifier ran before):
    argmax agreement with the reference, the largest change of a probability, CPU ms per crop (interleaved
    repeats, with and without flip TTA)."""
    import torch.nn.functional as F

    from fer_video.classify import EmotionClassifier
    from fer_video.device import native_bf16
    from fer_video.model import load_model
    from fer_video.stages import default_weights

    crops = _real_crops(videos)
    cpu = torch.device("cpu")
    weights = str(default_weights())
    plain, card = load_model(weights)
    plain = plain.eval().to(memory_format=torch.channels_last)
    clf32 = EmotionClassifier.from_weights(weights, cpu, 64, False, "fp32")
    print(f"{len(crops)} crops from {len(videos)} videos; native bf16: {native_bf16(cpu)}")

    @torch.inference_mode()
    def unfolded(batch: np.ndarray, tta: bool, bf16: bool) -> np.ndarray:
        out = []
        for s in range(0, len(batch), 64):
            x = torch.from_numpy(batch[s : s + 64]).permute(0, 3, 1, 2).float() / 255.0
            x = ((x - card.mean[0]) / card.std[0]).contiguous(memory_format=torch.channels_last)
            x = torch.cat([x, torch.flip(x, dims=[3])]) if tta else x
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                p = F.softmax(plain(x).float(), 1)
            out.append(((p[: len(p) // 2] + p[len(p) // 2 :]) / 2 if tta else p).numpy())
        return np.concatenate(out)

    runs = {
        "fp32 plain": lambda b, tta: unfolded(b, tta, False),
        "bf16 autocast": lambda b, tta: unfolded(b, tta, True),
        "classifier fp32": clf32.predict,
        "classifier bf16": EmotionClassifier.from_weights(weights, cpu, 64, False, "bf16").predict,
    }
    for tta in (False, True):
        cost, probs = dict.fromkeys(runs, 0.0), {}
        for f in runs.values():
            f(crops[:64], tta)  # warm-up: oneDNN builds its kernels on the first calls
        for _ in range(repeat):
            for name, f in runs.items():
                c = time.process_time()
                probs[name] = f(crops, tta)
                cost[name] += time.process_time() - c
        ref = probs["fp32 plain"]
        for name in runs:
            agree = float((ref.argmax(1) == probs[name].argmax(1)).mean())
            diff = np.abs(ref - probs[name])
            print(
                f"tta {tta}: {name}: {cost[name] / repeat / len(crops) * 1000:.2f} CPU-ms per crop; argmax "
                f"agreement with fp32 plain {agree:.4f}, |p - p_fp32| max {diff.max():.4f} mean {diff.mean():.5f}",
                flush=True,
            )


def classify_ort(videos: list[Path], batches: list[int], repeat: int = 3) -> None:
    """The shipped model in fp32 (BatchNorm folded, as the classifier runs it) on real face crops: PyTorch
    (channels_last, what ``fer_video.classify`` does) against ONNX Runtime's CPU provider on the same network
    exported to ONNX, at several batch sizes, interleaved; CPU ms per crop, the largest difference of a logit,
    and the multiply-adds per crop with the rate they imply (how close the CPU is to its arithmetic limit).
    Needs ``pip install onnxruntime onnx`` (not a dependency of fer-video)."""
    import io

    try:
        import onnxruntime as ort
    except ImportError:
        raise SystemExit("classify-ort needs onnxruntime and onnx: pip install onnxruntime onnx") from None
    from torch.utils.flop_counter import FlopCounterMode

    from fer_video.classify import fold_batchnorm
    from fer_video.model import load_model
    from fer_video.stages import default_weights

    model, card = load_model(str(default_weights()))
    net = fold_batchnorm(model).float().eval()
    crops = _real_crops(videos)
    x_all = torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255.0
    x_all = ((x_all - card.mean[0]) / card.std[0]).contiguous()
    buf = io.BytesIO()
    torch.onnx.export(net, (x_all[:8],), buf, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "n"}}, dynamo=False)  # fmt: skip
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = torch.get_num_threads(), 1
    sess = ort.InferenceSession(buf.getvalue(), so, providers=["CPUExecutionProvider"])
    with FlopCounterMode(display=False) as fc, torch.inference_mode():
        net(x_all[:1])
    macs = fc.get_total_flops() / 2
    cl = net.to(memory_format=torch.channels_last)
    print(f"{len(crops)} crops from {len(videos)} videos; {macs / 1e6:.0f} M multiply-adds per crop; "
          f"{torch.get_num_threads()} thread(s); onnxruntime {ort.__version__}")  # fmt: skip

    @torch.inference_mode()
    def run_torch(b: int) -> np.ndarray:
        parts = [x_all[s : s + b].contiguous(memory_format=torch.channels_last) for s in range(0, len(x_all), b)]
        return np.concatenate([cl(x).numpy() for x in parts])

    def run_ort(b: int) -> np.ndarray:
        return np.concatenate([sess.run(None, {"x": x_all[s : s + b].numpy()})[0] for s in range(0, len(x_all), b)])

    for b in batches:
        cost = {"torch": 0.0, "ort": 0.0}
        out = {}
        for fn in (run_torch, run_ort):
            fn(b)  # warm-up
        for _ in range(repeat):
            for name, fn in (("torch", run_torch), ("ort", run_ort)):
                c = time.process_time()
                out[name] = fn(b)
                cost[name] += time.process_time() - c
        per = {k: v / repeat / len(x_all) * 1000 for k, v in cost.items()}
        rate = {k: macs * 2 / (v / 1000) / 1e9 / torch.get_num_threads() for k, v in per.items()}
        print(
            f"batch {b}: torch {per['torch']:.2f} CPU-ms per crop ({rate['torch']:.0f} GFLOP/s per thread), "
            f"onnxruntime {per['ort']:.2f} ({rate['ort']:.0f}); max |logit difference| "
            f"{np.abs(out['torch'] - out['ort']).max():.1e}",
            flush=True,
        )


def mtcnn_precision(seconds: float = 2.0) -> None:
    """facenet-pytorch's P-Net, R-Net and O-Net (their shipped weights) on random inputs of the
    sizes the pipeline gives them (four 384x216 pyramid levels, 200 R-Net and 40 O-Net candidates), channels_last,
    in fp32 and in bf16 weights and activations: CPU ms per call."""
    from facenet_pytorch.models.mtcnn import ONet, PNet, RNet

    def bench(net: torch.nn.Module, x: torch.Tensor, dtype: torch.dtype) -> float:
        net = net.eval().to(dtype=dtype, memory_format=torch.channels_last)
        x = x.to(dtype).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            for _ in range(2):
                net(x)
            start, k = time.process_time(), 0
            while time.process_time() - start < seconds:
                net(x)
                k += 1
        return (time.process_time() - start) / k * 1000

    nets = (("P-Net, 4 x 384x216", PNet, (4, 3, 216, 384)), ("R-Net, 200 x 24x24", RNet, (200, 3, 24, 24)),
            ("O-Net, 40 x 48x48", ONet, (40, 3, 48, 48)))  # fmt: skip
    for name, cls, shape in nets:
        x = torch.randn(shape)
        fp32, bf16 = bench(cls(), x, torch.float32), bench(cls(), x, torch.bfloat16)
        print(f"{name}: fp32 {fp32:.1f} CPU-ms, bf16 {bf16:.1f}", flush=True)


def encode_threads(video: Path, rounds: int = 4) -> None:
    """The video's frames (decoded once, kept as YUV 4:2:0) encoded by libx264 at the pipeline's crf and preset,
    with PyAV's default slice threads and with frame threads, alternating: wall and CPU seconds, file size."""
    import os
    import tempfile

    import av

    from fer_video.types import Settings

    defaults = Settings()  # the pipeline's crf and preset
    with av.open(str(video)) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        frames = [f.to_ndarray(format="yuv420p") for f in c.decode(s)]
    h, w = frames[0].shape[0] * 2 // 3, frames[0].shape[1]
    for k in range(2 * rounds):
        kind = ("SLICE", "FRAME")[k % 2]
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "x.mp4")
            with av.open(path, "w") as out:
                st = out.add_stream("libx264", rate=25)
                st.width, st.height, st.pix_fmt = w, h, "yuv420p"
                st.options = {"crf": str(defaults.crf), "preset": defaults.preset}
                st.thread_type = kind
                t, c0 = time.perf_counter(), time.process_time()
                for i, y in enumerate(frames):
                    frame = av.VideoFrame.from_ndarray(y, format="yuv420p")
                    frame.pts = i
                    out.mux(st.encode(frame))
                out.mux(st.encode(None))
            wall, cpu = time.perf_counter() - t, time.process_time() - c0
            size = os.path.getsize(path)
            print(f"{kind:5s} threads: {len(frames)} frames {wall:.2f} s wall, {cpu:.2f} CPU-s, {size} bytes")


def detect_ab(rev: str, video: Path, rounds: int = 6) -> None:
    """``fer_video/mtcnn.py`` as it is at git revision ``rev`` against the working tree's, on the same 16
    detection frames (640 px longer side, min face 20, 4 frames per call), alternating: CPU-ms per frame and the
    largest box difference."""
    import importlib.util
    import subprocess
    import tempfile

    import av
    import cv2

    source = subprocess.run(["git", "show", f"{rev}:fer_video/mtcnn.py"], cwd=ROOT, capture_output=True, check=True)
    with tempfile.NamedTemporaryFile("wb", suffix=".py", delete=False) as fh:
        fh.write(source.stdout)

    def load(path: str, name: str):
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module

    old, new = load(fh.name, "mtcnn_at_rev"), load(str(ROOT / "fer_video" / "mtcnn.py"), "mtcnn_now")
    frames = []
    with av.open(str(video)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i % 8 == 0:
                img = f.to_ndarray(format="rgb24")
                s = 640 / max(img.shape[:2])
                size = (round(img.shape[1] * s), round(img.shape[0] * s))
                frames.append(cv2.resize(img, size, interpolation=cv2.INTER_AREA) if s < 1 else img)
            if len(frames) == 16:
                break
    batch = np.stack(frames)
    cascades = {rev: old.MTCNNCascade(torch.device("cpu")), "now": new.MTCNNCascade(torch.device("cpu"))}
    cpu, boxes = dict.fromkeys(cascades, 0.0), {}
    for k in range(rounds):
        for name in list(cascades)[:: 1 if k % 2 == 0 else -1]:
            c0 = time.process_time()
            boxes[name] = [b for s in range(0, len(batch), 4) for b in cascades[name].detect(batch[s : s + 4], 20)]
            cpu[name] += time.process_time() - c0
    diff = max((np.abs(a[:, :4] - b[:, :4]).max() if len(a) else 0.0) for a, b in zip(*boxes.values(), strict=True))
    per = {n: round(v / rounds / len(batch) * 1000, 1) for n, v in cpu.items()}
    print(
        f"CPU-ms per detection frame: {per}; now / {rev}: {cpu['now'] / cpu[rev]:.3f}; largest box change {diff:.4f} px"
    )


def decode_rgb(videos: list[Path], rounds: int = 2) -> None:
    """Each video decoded as the pipeline decodes it, its frames turned into RGB by PyAV (libswscale, what
    ``VideoReader`` does) and by OpenCV's ``COLOR_YUV2RGB_I420`` (BT.601 limited range only), alternating with
    decoding alone: the whole process's CPU-ms per frame (the decoder's and libswscale's threads included), and
    how far the two RGB images differ."""
    import av
    import cv2

    cv2.setNumThreads(1)
    to_rgb = {
        "none": lambda f: None,
        "swscale": lambda f: f.to_ndarray(format="rgb24"),
        "opencv": lambda f: cv2.cvtColor(f.to_ndarray(format="yuv420p"), cv2.COLOR_YUV2RGB_I420),
    }
    for path in videos:
        with av.open(str(path)) as c:
            f = next(c.decode(video=0))
            if f.format.name != "yuv420p":
                print(f"{path.name}: {f.format.name}, not yuv420p: skipped")
                continue
            diff = np.abs(to_rgb["swscale"](f).astype(int) - to_rgb["opencv"](f).astype(int))
            print(
                f"{path.name}: {f.width}x{f.height}, colorspace {f.colorspace}, range {f.color_range}; first frame "
                f"|swscale - opencv| mean {diff.mean():.2f}, max {diff.max()} grey levels"
            )
        for _ in range(rounds):
            for how, convert in to_rgb.items():
                with av.open(str(path)) as c:
                    s = c.streams.video[0]
                    s.thread_type = "AUTO"
                    c0, n = time.process_time(), 0
                    for f in c.decode(s):
                        convert(f)
                        n += 1
                print(f"  {how:8s} {n} frames: {1000 * (time.process_time() - c0) / n:.2f} CPU-ms per frame")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "what",
        choices=[
            "detect", "classify", "cascade", "train-step", "classify-precision", "classify-models", "encode",
            "detect-ab", "classify-ort", "mtcnn-precision", "decode-rgb",
        ],
    )  # fmt: skip
    p.add_argument("--weights", default="", help="classify-models: comma-separated .pt files to compare")
    p.add_argument("--rev", default="HEAD", help="detect-ab: the git revision to compare with")
    p.add_argument("video", nargs="*", default=[str(ROOT / "benchmarks/out/videos/demo_1280x720_25fps_10s.mp4")])
    p.add_argument(
        "--batches", type=int, nargs="+", default=None, help="cascade: frames per call (1 2 4 8); classify-ort: crops"
    )
    p.add_argument("--sides", type=int, nargs="+", default=[480, 640, 960])
    p.add_argument("--min-faces", type=int, nargs="+", default=[20, 40])
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.what == "detect":
        detect(Path(args.video[0]), args.sides, args.min_faces)
    elif args.what == "cascade":
        cascade([Path(v) for v in args.video], args.batches or [1, 2, 4, 8])
    elif args.what == "decode-rgb":
        decode_rgb([Path(v) for v in args.video])
    elif args.what == "mtcnn-precision":
        mtcnn_precision()
    elif args.what == "classify-ort":
        classify_ort([Path(v) for v in args.video], args.batches or [8, 24, 64])
    elif args.what == "train-step":
        train_step()
    elif args.what == "classify-precision":
        classify_precision([Path(v) for v in args.video])
    elif args.what == "classify-models":
        classify_models([Path(v) for v in args.video], [w for w in args.weights.split(",") if w])
    elif args.what == "encode":
        encode_threads(Path(args.video[0]))
    elif args.what == "detect-ab":
        detect_ab(args.rev, Path(args.video[0]))
    else:
        classify()


if __name__ == "__main__":
    main()

"""Videos and pictures of adaptation: the policy before adaptation and after each inner step.

Nothing here runs the policy again. Frames are drawn from what an evaluation recorded in its
:class:`~rlmaml.rl.episodes.Episodes` (one ``Episodes`` per phase: before adaptation, after 1 step, …),
so a video shows exactly the tasks, seeds and action noise the reported returns came from:

* MuJoCo families (HalfCheetahVel/Dir, AntVel/Dir/Goal): the joint positions ``infos["qpos"]`` recorded at
  every step (env built with ``record_state=True``) are written back into ``MjData.qpos`` (and
  ``qvel`` when recorded), ``mj_forward`` recomputes the kinematics and ``mujoco.Renderer`` draws the
  scene offscreen with a camera tracking the torso; the goal of AntGoal is a red sphere, and the
  torso's ground-plane paths (the free joint's ``x, y``) also go into a trajectory PNG.
* planar families (2D navigation): the positions (``infos["position"]``, else the observations) are drawn as
  a moving point with its trail and the goal, plus a PNG of all trajectories before and after adaptation.

How a family is drawn is its record's :class:`~rlmaml.envs.registry.RenderHints` (``kind``, ``asset``,
``camera``); a family without hints is drawn from what its episodes recorded (``qpos``: MuJoCo replay,
``position``: planar).

Each phase is one episode of ``H`` steps, one frame per step, so a video of ``k + 1`` phases has
``H · (k + 1)`` frames. Offscreen OpenGL defaults to EGL (``MUJOCO_GL=egl``) when ``MUJOCO_GL`` is unset.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from ..envs.registry import RenderHints, families, family
from ..errors import UserError

os.environ.setdefault("MUJOCO_GL", "egl")
if os.environ["MUJOCO_GL"].lower() in ("egl", "osmesa"):
    os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"].lower())

GL_FIX = "set MUJOCO_GL=egl or osmesa; install libegl1 / libosmesa6 (Mesa)"


class RenderError(UserError):
    """Rendering is impossible here (no OpenGL backend, missing recorded states, ...)."""


# ------------------------------------------------------------------------------------------ video files
def _even(frame: np.ndarray) -> np.ndarray:
    """Pad H and W to even sizes (libx264 with yuv420p needs them) by repeating the last row/column."""
    h, w = frame.shape[:2]
    if h % 2 or w % 2:
        frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    return frame


def _check_frames(frames: Sequence[np.ndarray]) -> list[np.ndarray]:
    if len(frames) == 0:
        raise UserError("no frames to write")
    out = []
    shape = None
    for i, f in enumerate(frames):
        f = np.asarray(f)
        if f.ndim != 3 or f.shape[2] != 3 or f.dtype != np.uint8:
            raise UserError(f"frame {i} must be an HxWx3 uint8 array, got shape {f.shape} dtype {f.dtype}")
        if shape is not None and f.shape != shape:
            raise UserError(f"frame {i} has shape {f.shape}, the first frame {shape}; all frames must match")
        shape = f.shape
        out.append(_even(f))
    return out


def ffmpeg_available() -> bool:
    """True when imageio-ffmpeg can find an ffmpeg executable."""
    try:
        import imageio_ffmpeg

        return bool(imageio_ffmpeg.get_ffmpeg_exe())
    except Exception:  # noqa: BLE001 - any failure means no ffmpeg
        return False


def write_video(frames: Sequence[np.ndarray], path: str | Path, fps: float = 20) -> Path:
    """Write RGB frames (HxWx3 uint8) as an H.264 MP4 (yuv420p, dimensions padded to even);
    falls back to an animated GIF next to ``path`` when ffmpeg is unavailable. Returns the path written."""
    frames = _check_frames(frames)
    if not fps or fps <= 0:
        raise UserError(f"fps must be positive, got {fps!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    import imageio.v2 as imageio

    if path.suffix.lower() != ".gif" and ffmpeg_available():
        path = path.with_suffix(".mp4") if path.suffix.lower() != ".mp4" else path
        writer = imageio.get_writer(path, format="FFMPEG", mode="I", fps=fps, codec="libx264",
                                    pixelformat="yuv420p", macro_block_size=1, quality=None,
                                    ffmpeg_log_level="error", output_params=["-crf", "23"])
        try:
            for frame in frames:
                writer.append_data(frame)
        finally:
            writer.close()
        return path
    path = path.with_suffix(".gif")
    imageio.mimsave(path, frames, format="GIF", duration=1000.0 / fps, loop=0)
    return path


def read_video_frame_count(path: str | Path) -> int:
    """Number of frames in a video file written by :func:`write_video` (decodes the file)."""
    import imageio.v2 as imageio

    reader = imageio.get_reader(Path(path))
    try:
        return sum(1 for _ in reader)
    finally:
        reader.close()


# ------------------------------------------------------------------------------------------ annotations
_FONTS: dict[int, Any] = {}


def _font(size: int):
    if size not in _FONTS:
        from PIL import ImageFont

        try:
            from matplotlib import font_manager

            _FONTS[size] = ImageFont.truetype(font_manager.findfont("DejaVu Sans Mono"), size)
        except Exception:  # noqa: BLE001 - fall back to PIL's own font
            try:
                _FONTS[size] = ImageFont.load_default(size=size)
            except TypeError:
                _FONTS[size] = ImageFont.load_default()
    return _FONTS[size]


def annotate(frame: np.ndarray, lines: Sequence[str], font_size: int | None = None) -> np.ndarray:
    """Return a copy of ``frame`` with ``lines`` written in its top-left corner on a translucent box."""
    from PIL import Image, ImageDraw

    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise UserError(f"frame must be HxWx3, got shape {frame.shape}")
    lines = [str(line) for line in lines if str(line)]
    if not lines:
        return frame.astype(np.uint8, copy=True)
    size = font_size or max(10, frame.shape[0] // 22)
    font = _font(size)
    image = Image.fromarray(frame.astype(np.uint8)).convert("RGBA")
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    pad, gap = size // 2, size // 4
    widths = [draw.textbbox((0, 0), line, font=font)[2] for line in lines]
    box_h = pad * 2 + len(lines) * size + (len(lines) - 1) * gap
    draw.rectangle([0, 0, min(image.width, max(widths) + 2 * pad), min(image.height, box_h)], fill=(0, 0, 0, 140))
    y = pad
    for line in lines:
        draw.text((pad, y), line, font=font, fill=(255, 255, 255, 255))
        y += size + gap
    return np.asarray(Image.alpha_composite(image, overlay).convert("RGB"), dtype=np.uint8)


def describe_task(task: Mapping[str, Any]) -> str:
    """Human-readable task: ``{"velocity": 1.3}`` -> ``"target v = 1.30 m/s"``."""
    for key in ("velocity", "goal_velocity", "target_velocity", "goal_vel"):
        if key in task:
            return f"target v = {float(np.asarray(task[key]).reshape(-1)[0]):.2f} m/s"
    for key in ("direction", "goal_direction", "goal_dir"):
        if key in task:
            d = np.asarray(task[key], dtype=np.float64).reshape(-1)
            if d.size == 1:
                return f"direction: {'forward (+x)' if d[0] > 0 else 'backward (-x)'}"
            return "direction = (" + ", ".join(f"{v:+.2f}" for v in d) + ")"
    for key in ("goal", "position", "target"):
        if key in task:
            g = np.asarray(task[key], dtype=np.float64).reshape(-1)
            return "goal = (" + ", ".join(f"{v:+.2f}" for v in g) + ")"
    return ", ".join(f"{k} = {_fmt(v)}" for k, v in task.items())


def measured_line(goal: np.ndarray | None, position: np.ndarray, mean_velocity: float | None) -> str | None:
    """What the policy achieved so far: for a goal task the L1 distance ``‖p − g‖₁`` of the root's ``(x, y)``
    to the goal (the distance AntGoal's reward charges), else the mean x velocity over the episode so far."""
    if goal is not None and goal.size >= 2:
        return f"distance to goal = {float(np.abs(np.asarray(position)[:2] - goal[:2]).sum()):.2f} m (L1)"
    if mean_velocity is not None:
        return f"measured v = {mean_velocity:+.2f} m/s (mean so far)"
    return None


def _fmt(value: Any) -> str:
    arr = np.asarray(value)
    if arr.dtype.kind == "f":
        return np.array2string(arr, precision=2) if arr.ndim else f"{float(arr):.2f}"
    return str(value)


def phase_name(phase: int) -> str:
    """``0`` -> ``"before adaptation"``, ``k`` -> ``"after k step(s)"``."""
    return "before adaptation" if phase == 0 else f"after {phase} step{'s' if phase > 1 else ''}"


# ---------------------------------------------------------------------------------------- episode data
def _np(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().to("cpu").double().numpy()
    return np.asarray(x, dtype=np.float64)


def episode_info(episodes, key: str, task_index: int, episode_index: int = 0) -> np.ndarray | None:
    """``episodes.infos[key][:, task, episode]`` as a float64 array ``[H, ...]`` (None when not recorded)."""
    infos = getattr(episodes, "infos", None) or {}
    if key not in infos:
        return None
    return _np(infos[key][:, task_index, episode_index])


def episode_mask(episodes, task_index: int, episode_index: int = 0) -> np.ndarray:
    """``[H]`` mask of one episode (1 up to and including the terminating step)."""
    return _np(episodes.mask[:, task_index, episode_index])


def _hold_after_termination(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Repeat the last valid row over the masked-out tail so a terminated episode stands still."""
    valid = np.flatnonzero(mask > 0)
    if valid.size and valid[-1] + 1 < len(values):
        values = values.copy()
        values[valid[-1] + 1:] = values[valid[-1]]
    return values


def _running_mean(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.cumsum(x * mask) / np.maximum(np.cumsum(mask), 1.0)


# -------------------------------------------------------------------------------------- MuJoCo replay
DEFAULT_CAMERA = {"distance": 4.0, "elevation": -15.0, "azimuth": 90.0}  # a family's hints without a camera


def render_hints(env_id: str) -> RenderHints:
    """The render hints of ``env_id``'s task family; empty hints for an id the registry cannot resolve."""
    try:
        return family(env_id).render
    except UserError:
        return RenderHints()


def _drawn(kind: str) -> str:
    return ", ".join(f.env_id for f in families() if f.render.kind == kind) or "none"


def mujoco_model(env_id: str):
    """The ``MjModel`` the environment simulates: taken from ``gymnasium.make(env_id)`` when it is a MuJoCo
    env, else Gymnasium's bundled asset named by the family's hints (``half_cheetah.xml`` / ``ant.xml``)."""
    mujoco = _import_mujoco()
    asset = render_hints(env_id).asset
    try:
        import gymnasium as gym

        env = gym.make(env_id)
        model = getattr(env.unwrapped, "model", None)
        env.close()
    except Exception:  # noqa: BLE001 - fall back to the bundled asset below
        model = None
    if isinstance(model, mujoco.MjModel):
        return model
    if asset is None:
        raise RenderError(f"env {env_id!r} is not a MuJoCo family; MuJoCo replay supports {_drawn('mujoco')}")
    from gymnasium.envs import mujoco as gym_mujoco

    xml = Path(gym_mujoco.__file__).parent / "assets" / asset
    return mujoco.MjModel.from_xml_path(str(xml))


def _import_mujoco():
    """``import mujoco``; a broken OpenGL backend selected by MUJOCO_GL fails here with a one-line fix."""
    try:
        import mujoco
    except Exception as exc:  # noqa: BLE001 - e.g. MUJOCO_GL=osmesa without libOSMesa
        raise RenderError(f"no OpenGL backend for MuJoCo rendering (MUJOCO_GL={os.environ.get('MUJOCO_GL', '')}): "
                          f"{_first_line(exc)}; {GL_FIX}") from None
    return mujoco


def _select_gl_backend() -> str:
    """Make mujoco's offscreen renderer use ``MUJOCO_GL`` (default egl), even when mujoco was imported first."""
    backend = os.environ.get("MUJOCO_GL", "").lower().strip() or "egl"
    try:
        from mujoco.rendering.classic import gl_context
    except ImportError:  # older mujoco layout
        from mujoco import gl_context  # type: ignore[no-redef]
    if getattr(gl_context, "_MUJOCO_GL", backend) != backend and backend in ("egl", "osmesa", "glfw"):
        try:
            if backend == "egl":
                from mujoco.egl import GLContext
            elif backend == "osmesa":
                from mujoco.osmesa import GLContext
            else:
                from mujoco.glfw import GLContext
            gl_context.GLContext = GLContext
            gl_context._MUJOCO_GL = backend
        except Exception as exc:  # noqa: BLE001
            raise RenderError(f"no OpenGL backend for MuJoCo rendering (MUJOCO_GL={backend}): "
                              f"{_first_line(exc)}; {GL_FIX}") from None
    return backend


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


class MujocoReplay:
    """Offscreen renderer of recorded MuJoCo states: ``frames(qpos, qvel)`` → list of HxWx3 uint8 frames.

    The camera tracks the torso (body 1) from the side, so the robot stays in view while it runs, or looks at a
    fixed point (a ``lookat`` in the camera hints: Meta-World's table). ``model``: the MjModel to replay in
    (default the env's, :func:`mujoco_model`)."""

    def __init__(self, env_id: str, width: int = 480, height: int = 320, camera: Mapping[str, float] | None = None,
                 model=None):
        mujoco = _import_mujoco()
        if width <= 0 or height <= 0:
            raise UserError(f"video size must be positive, got {width}x{height}")
        self.env_id = env_id
        self.model = model if model is not None else mujoco_model(env_id)
        self.model.vis.global_.offwidth = max(int(self.model.vis.global_.offwidth), int(width))
        self.model.vis.global_.offheight = max(int(self.model.vis.global_.offheight), int(height))
        self.data = mujoco.MjData(self.model)
        backend = _select_gl_backend()
        try:
            self.renderer = mujoco.Renderer(self.model, height=int(height), width=int(width))
        except Exception as exc:  # noqa: BLE001 - any GL failure gets the same one-line fix
            raise RenderError(f"no OpenGL backend for MuJoCo rendering (MUJOCO_GL={backend}): "
                              f"{_first_line(exc)}; {GL_FIX}") from None
        self.camera = mujoco.MjvCamera()
        self.marker_radius = float(render_hints(env_id).marker_radius)
        cam = dict(render_hints(env_id).camera or DEFAULT_CAMERA)
        cam.update(camera or {})
        if "lookat" in cam:  # fixed on a point of the scene
            self.camera.type = mujoco.mjtCamera.mjCAMERA_FREE
            self.camera.lookat[:] = np.asarray(cam["lookat"], dtype=np.float64)
        else:  # tracking the torso
            self.camera.type = mujoco.mjtCamera.mjCAMERA_TRACKING
            self.camera.trackbodyid = 1
        self.camera.distance = cam["distance"]
        self.camera.elevation = cam["elevation"]
        self.camera.azimuth = cam["azimuth"]

    def frame(self, qpos: np.ndarray, qvel: np.ndarray | None = None,
              markers: Sequence[np.ndarray] = ()) -> np.ndarray:
        """One frame of the state ``(qpos, qvel)``; ``markers``: world positions drawn as red spheres (goals) of
        the hints' ``marker_radius``."""
        import mujoco

        self.data.qpos[:] = qpos
        if qvel is not None:
            self.data.qvel[:] = qvel
        mujoco.mj_forward(self.model, self.data)
        self.renderer.update_scene(self.data, camera=self.camera)
        scene = self.renderer.scene
        for position in markers:
            if scene.ngeom >= scene.maxgeom:
                break
            mujoco.mjv_initGeom(scene.geoms[scene.ngeom], mujoco.mjtGeom.mjGEOM_SPHERE, np.array([self.marker_radius, 0, 0]),
                                np.asarray(position, dtype=np.float64), np.eye(3).reshape(-1),
                                np.array([0.9, 0.1, 0.1, 0.9], dtype=np.float32))
            scene.ngeom += 1
        return self.renderer.render().copy()

    def frames(self, qpos: np.ndarray, qvel: np.ndarray | None = None,
               markers: Sequence[np.ndarray] = ()) -> list[np.ndarray]:
        """Frames of a recorded trajectory ``qpos [H, nq]`` (``qvel [H, nv]`` optional)."""
        qpos = np.asarray(qpos, dtype=np.float64)
        if qpos.ndim != 2 or qpos.shape[1] != self.model.nq:
            raise RenderError(f"recorded qpos has shape {qpos.shape}; {self.env_id!r} needs [H, {self.model.nq}]")
        if qvel is not None:
            qvel = np.asarray(qvel, dtype=np.float64)
            if qvel.shape != (qpos.shape[0], self.model.nv):
                qvel = None  # velocities do not change the picture; ignore a mismatched recording
        return [self.frame(qpos[t], None if qvel is None else qvel[t], markers) for t in range(qpos.shape[0])]

    def close(self) -> None:
        self.renderer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def mujoco_phase_frames(replay: MujocoReplay, episodes, task: Mapping[str, Any], task_index: int, phase: int,
                        episode_index: int = 0, markers: Sequence[np.ndarray] | None = None) -> list[np.ndarray]:
    """Annotated frames of one recorded episode (one phase) of a MuJoCo task; ``markers`` (world positions, red
    spheres) default to the task's goal position, when it has one. Episodes that record ``infos["success"]``
    (Meta-World) say on every frame whether, and from which step, the task is solved."""
    qpos = episode_info(episodes, "qpos", task_index, episode_index)
    if qpos is None:
        raise RenderError(f"episodes of {replay.env_id!r} carry no infos['qpos']; evaluate with the env built "
                          "with record_state=True to render videos")
    mask = episode_mask(episodes, task_index, episode_index)
    qpos = _hold_after_termination(qpos, mask)
    qvel = episode_info(episodes, "qvel", task_index, episode_index)
    if qvel is not None:
        qvel = _hold_after_termination(qvel, mask)
    velocity = episode_info(episodes, "x_velocity", task_index, episode_index)
    rewards = _np(episodes.rewards[:, task_index, episode_index]) * mask
    cum_return = np.cumsum(rewards)
    mean_v = _running_mean(velocity, mask) if velocity is not None else None
    goal = task_goal(task)
    if markers is None:
        markers = [np.array([goal[0], goal[1], 0.15])] if goal is not None and goal.size >= 2 else []
    success = episode_info(episodes, "success", task_index, episode_index)
    first_success = None
    if success is not None:
        solved = np.flatnonzero((np.asarray(success).reshape(-1) > 0.5) & (mask > 0))
        first_success = int(solved[0]) if solved.size else None
    frames = []
    for t, image in enumerate(replay.frames(qpos, qvel, markers)):
        lines = [describe_task(task), f"phase: {phase_name(phase)}   t = {t + 1}/{len(qpos)}"]
        measured = measured_line(goal, qpos[t, :2], None if mean_v is None else mean_v[t])
        if measured is not None:
            lines.append(measured)
        if success is not None:
            solved_yet = first_success is not None and t >= first_success
            lines.append(f"success: yes (from step {first_success + 1})" if solved_yet else "success: not yet")
        lines.append(f"return = {cum_return[t]:.1f}")
        frames.append(annotate(image, lines))
    return frames


# ------------------------------------------------------------------------------------------ navigation
def planar_positions(episodes, task_index: int, episode_index: int = 0) -> np.ndarray:
    """Ground-plane positions ``[H, 2]`` of one episode, held at the last valid position after termination:
    the point's ``infos["position"]`` (navigation), else the free joint's ``x, y`` in ``infos["qpos"]`` (the
    Ant's torso), else the first two observation entries."""
    pos = episode_info(episodes, "position", task_index, episode_index)
    if pos is None:
        pos = episode_info(episodes, "qpos", task_index, episode_index)
    if pos is None:
        pos = _np(episodes.observations[:, task_index, episode_index, :2])
    return _hold_after_termination(pos[:, :2], episode_mask(episodes, task_index, episode_index))


def task_goal(task: Mapping[str, Any]) -> np.ndarray | None:
    """The 2D goal of a navigation task (``goal`` / ``position`` / ``target``)."""
    for key in ("goal", "position", "target"):
        if key in task:
            return np.asarray(task[key], dtype=np.float64).reshape(-1)[:2]
    return None


def _nav_bounds(paths: Sequence[np.ndarray], goals: Sequence[np.ndarray | None]) -> tuple[float, float, float, float]:
    pts = [np.zeros((1, 2))] + [p for p in paths] + [g[None] for g in goals if g is not None]
    pts = np.concatenate(pts)
    lo, hi = pts.min(0), pts.max(0)
    span = max(float((hi - lo).max()), 0.2) * 1.15
    center = (lo + hi) / 2
    return center[0] - span / 2, center[0] + span / 2, center[1] - span / 2, center[1] + span / 2


def trajectories_figure(phases: Sequence[Any], tasks: Sequence[Mapping[str, Any]],
                        task_indices: Sequence[int], episode_index: int = 0, title: str | None = None):
    """Ground-plane trajectories before and after each inner step (:func:`planar_positions`), one panel per
    task, goals as stars: 2D navigation and goal-position MuJoCo tasks (AntGoal)."""
    from matplotlib.figure import Figure

    n = len(task_indices)
    fig = Figure(figsize=(max(3.8 * n, 6.4), 4.6), dpi=110, layout="constrained")  # wide enough for the title
    colors = ["tab:gray", "tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"]
    for col, ti in enumerate(task_indices):
        ax = fig.add_subplot(1, n, col + 1)
        goal = task_goal(tasks[ti])
        paths = [planar_positions(ep, ti, episode_index) for ep in phases]
        for k, path in enumerate(paths):
            line = np.concatenate([np.zeros((1, 2)), path])
            ret = float((_np(phases[k].rewards[:, ti, episode_index]) * episode_mask(phases[k], ti, episode_index)).sum())
            ax.plot(line[:, 0], line[:, 1], "-", color=colors[k % len(colors)], lw=1.5,
                    label=f"{phase_name(k)} ({ret:.1f})", alpha=0.6 if k == 0 else 1.0)
        ax.plot([0], [0], "ko", ms=5)
        if goal is not None:
            ax.plot([goal[0]], [goal[1]], "*", color="red", ms=16, label="goal")
        x0, x1, y0, y1 = _nav_bounds(paths, [goal])
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_aspect("equal")
        ax.set_title(f"task {ti}: {describe_task(tasks[ti])}", fontsize=9)
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    fig.suptitle(title or "2D navigation: trajectories before and after adaptation (return in brackets)")
    return fig


def navigation_phase_frames(episodes, task: Mapping[str, Any], task_index: int, phase: int, bounds,
                            episode_index: int = 0, size: int = 320) -> list[np.ndarray]:
    """PIL-drawn frames of one navigation episode: goal, trail and current position of the point."""
    from PIL import Image, ImageDraw

    path = planar_positions(episodes, task_index, episode_index)
    mask = episode_mask(episodes, task_index, episode_index)
    cum_return = np.cumsum(_np(episodes.rewards[:, task_index, episode_index]) * mask)
    goal = task_goal(task)
    x0, x1, y0, y1 = bounds

    def px(p):
        return ((p[0] - x0) / (x1 - x0) * (size - 1), (1 - (p[1] - y0) / (y1 - y0)) * (size - 1))

    base = Image.new("RGB", (size, size), (250, 250, 250))
    draw = ImageDraw.Draw(base)
    for v in np.linspace(-2.0, 2.0, 21):  # grid every 0.2
        a, b = px((v, y0)), px((v, y1))
        draw.line([a, b], fill=(228, 228, 228))
        a, b = px((x0, v)), px((x1, v))
        draw.line([a, b], fill=(228, 228, 228))
    ox, oy = px((0.0, 0.0))
    draw.ellipse([ox - 3, oy - 3, ox + 3, oy + 3], fill=(0, 0, 0))
    if goal is not None:
        gx, gy = px(goal)
        draw.ellipse([gx - 8, gy - 8, gx + 8, gy + 8], outline=(220, 30, 30), width=3)
        draw.ellipse([gx - 2, gy - 2, gx + 2, gy + 2], fill=(220, 30, 30))
    frames = []
    trail = [px((0.0, 0.0))]
    for t in range(len(path)):
        trail.append(px(path[t]))
        image = base.copy()
        d = ImageDraw.Draw(image)
        d.line(trail, fill=(40, 90, 200), width=2)
        cx, cy = trail[-1]
        d.ellipse([cx - 6, cy - 6, cx + 6, cy + 6], fill=(40, 90, 200))
        lines = [describe_task(task), f"phase: {phase_name(phase)}", f"t = {t + 1}/{len(path)}",
                 f"return = {cum_return[t]:.2f}"]
        frames.append(annotate(np.asarray(image), lines, font_size=max(10, size // 26)))
    return frames


# ------------------------------------------------------------------------------------------ adaptation
def is_planar(env_id: str, episodes=None) -> bool:
    """True when ``env_id``'s family is drawn as a point in the plane (render hints ``kind="planar"``, or no
    kind and episodes recording ``position`` without ``qpos``)."""
    kind = render_hints(env_id).kind
    if kind is not None:
        return kind == "planar"
    infos = getattr(episodes, "infos", None) or {}
    return "position" in infos and "qpos" not in infos


def _progress(items, enabled: bool):
    import sys

    from tqdm import tqdm

    return tqdm(items, desc="render videos", unit="task", disable=not enabled, file=sys.stderr, dynamic_ncols=True)


def _save_trajectories(phases, tasks, task_indices, episode_index, out_dir: Path, stem: str, what: str = "") -> Path:
    fig = trajectories_figure(phases, tasks, task_indices, episode_index,
                              title=f"{stem}: {what}trajectories before and after adaptation (return)")
    png = out_dir / f"{stem}_trajectories.png"
    fig.savefig(png)
    return png


def render_adaptation(env_id: str, phases: Sequence[Any], tasks: Sequence[Mapping[str, Any]], out_dir: str | Path,
                      num_tasks: int = 2, *, task_indices: Sequence[int] | None = None, episode_index: int = 0,
                      fps: float = 20, width: int = 480, height: int = 320, camera: Mapping[str, float] | None = None,
                      progress: bool = False) -> list[Path]:
    """Videos of the policy before adaptation and after each inner step, from an evaluation's recordings.

    ``phases[k]`` is the :class:`Episodes` the evaluation ran after ``k`` inner steps (k = 0: before
    adaptation) on ``tasks`` (task ``t`` is ``phases[k]`` task index ``t``). For each rendered task one
    video concatenates the phases (episode ``episode_index`` of each), ``H`` frames per phase, with the
    task, phase and measured velocity/return on every frame. Tasks with a goal position (navigation,
    AntGoal) also get a PNG of the ground-plane trajectories.
    Returns the files written."""
    if not phases:
        raise RenderError("nothing to render: the evaluation recorded no episodes")
    num_recorded = int(phases[0].rewards.shape[1])
    if len(tasks) != num_recorded:
        raise RenderError(f"{len(tasks)} tasks given but the episodes hold {num_recorded}")
    if task_indices is None:
        if num_tasks < 1:
            raise UserError(f"number of tasks to render must be >= 1, got {num_tasks}")
        task_indices = list(range(min(num_tasks, num_recorded)))
    bad = [i for i in task_indices if not 0 <= i < num_recorded]
    if bad:
        raise UserError(f"task index {bad[0]} out of range; the evaluation has {num_recorded} tasks")
    if not 0 <= episode_index < int(phases[0].rewards.shape[2]):
        raise UserError(f"episode index {episode_index} out of range; {int(phases[0].rewards.shape[2])} per task")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = str(env_id).split("/")[-1]
    written: list[Path] = []
    if is_planar(env_id, phases[0]):
        written.append(_save_trajectories(phases, tasks, task_indices, episode_index, out_dir, stem))
        for ti in _progress(task_indices, progress):
            bounds = _nav_bounds([planar_positions(ep, ti, episode_index) for ep in phases], [task_goal(tasks[ti])])
            frames = []
            for k, episodes in enumerate(phases):
                frames += navigation_phase_frames(episodes, tasks[ti], ti, k, bounds, episode_index, size=max(width, height))
            written.append(write_video(frames, out_dir / f"{stem}_task{ti}.mp4", fps))
        return written
    recorded_states = "qpos" in (getattr(phases[0], "infos", None) or {})
    if render_hints(env_id).kind != "mujoco" and not recorded_states:
        raise RenderError(f"cannot render {env_id!r}: supported are planar families ({_drawn('planar')}, or any "
                          f"recording infos['position']) and MuJoCo families ({_drawn('mujoco')}, or any recording "
                          "infos['qpos'])")
    if recorded_states and all(task_goal(tasks[ti]) is not None for ti in task_indices):
        written.append(_save_trajectories(phases, tasks, task_indices, episode_index, out_dir, stem, "torso "))
    scene = render_hints(env_id).scene  # a model (and marks) per task, else one replay for every task
    with nullcontext() if scene is not None else MujocoReplay(env_id, width, height, camera) as shared:
        for ti in _progress(task_indices, progress):
            model, markers = scene(env_id, tasks[ti]) if scene is not None else (None, None)
            with nullcontext(shared) if shared is not None else MujocoReplay(env_id, width, height, camera,
                                                                             model=model) as replay:
                frames = []
                for k, episodes in enumerate(phases):
                    frames += mujoco_phase_frames(replay, episodes, tasks[ti], ti, k, episode_index, markers)
            written.append(write_video(frames, out_dir / f"{stem}_task{ti}.mp4", fps))
    return written

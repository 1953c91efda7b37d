"""``sweep-v3`` and ``sweep-into-v3`` (metaworld's ``envs/sawyer_sweep_v3.py``, ``SawyerSweepEnvV3``, and
``envs/sawyer_sweep_into_goal_v3.py``, ``SawyerSweepIntoGoalEnvV3``): the same reward with the classes' own
``_gripper_caging_reward`` (the pads' y caging and gripping, the hand's xz caging; the action is not read), so no
float32 terms: equal to metaworld's to float64 rounding."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..metaworld_rewards import hamacher, native_class, norm, quat_from_xmat, tolerance

if TYPE_CHECKING:
    from ..metaworld_native import Copies

SWEEP_TARGET_RADIUS = 0.05  # compute_reward's _TARGET_RADIUS (both classes); success is obj_to_target <= 0.05
SWEEP_NEAR_OBJECT = 0.03  # evaluate_state: near_object (both classes)
SWEEP_OBJ_RADIUS = 0.02  # SawyerSweepEnvV3.OBJ_RADIUS = SawyerSweepIntoGoalEnvV3.OBJ_RADIUS
PAD_SUCCESS_MARGIN = 0.05  # _gripper_caging_reward: pad_success_margin (both classes)
SWEEP_GRIP_MARGIN = SWEEP_OBJ_RADIUS + 0.01  # SawyerSweepEnvV3._gripper_caging_reward: grip_success_margin
SWEEP_XZ_MARGIN = 0.005  # SawyerSweepEnvV3._gripper_caging_reward: x_z_success_margin
SWEEP_INTO_GRIP_MARGIN = SWEEP_OBJ_RADIUS + 0.005  # SawyerSweepIntoGoalEnvV3._gripper_caging_reward
SWEEP_INTO_XZ_MARGIN = 0.01  # SawyerSweepIntoGoalEnvV3._gripper_caging_reward: x_z_success_margin
CAGING_GRIP_THRESHOLD = 0.95  # _gripper_caging_reward (both classes): caging above which gripping counts


def _without_y(x: np.ndarray) -> np.ndarray:
    """``x + np.array([0.0, -x[1], 0.0])`` of each row (metaworld's xz projection)."""
    return x + np.stack([np.zeros(len(x)), -x[:, 1], np.zeros(len(x))], axis=1)


def _xz_margin(inner, xz_success_margin: float) -> float:
    """``_gripper_caging_reward``'s tcp_obj_x_z_margin (reads the episode's obj_init_pos and init_tcp)."""
    init_obj_x_z = inner.obj_init_pos + np.array([0.0, -inner.obj_init_pos[1], 0.0])
    init_tcp_x_z = inner.init_tcp + np.array([0.0, -inner.init_tcp[1], 0.0])
    return float(np.linalg.norm(init_obj_x_z - init_tcp_x_z, ord=2) - xz_success_margin)


def _caging(c: Copies, obj: np.ndarray, grip_margin: float, xz_margin: float) -> np.ndarray:
    """The classes' ``_gripper_caging_reward(action, obj, OBJ_RADIUS)``: (caging + gripping) / 2 with
    caging = hamacher(y caging, xz caging), gripping = y gripping where caging > 0.95 (0 elsewhere). Its
    ``init_left_pad``/``init_right_pad`` are views of the pads' current positions (``get_body_com`` in
    ``SawyerXYZEnv.__init__``), so the caging margins read the pads now."""
    left_pad, right_pad = c.body("leftpad"), c.body("rightpad")
    delta_left = left_pad[:, 1] - obj[:, 1]
    delta_right = obj[:, 1] - right_pad[:, 1]
    right_margin = np.abs(np.abs(obj[:, 1] - right_pad[:, 1]) - PAD_SUCCESS_MARGIN)
    left_margin = np.abs(np.abs(obj[:, 1] - left_pad[:, 1]) - PAD_SUCCESS_MARGIN)
    r = SWEEP_OBJ_RADIUS
    y_caging = hamacher(tolerance(delta_right, r, PAD_SUCCESS_MARGIN, right_margin, "long_tail"),
                        tolerance(delta_left, r, PAD_SUCCESS_MARGIN, left_margin, "long_tail"))
    y_gripping = hamacher(tolerance(delta_right, r, grip_margin, right_margin, "long_tail"),
                          tolerance(delta_left, r, grip_margin, left_margin, "long_tail"))
    tcp_obj_norm_x_z = norm(_without_y(c.tcp_center) - _without_y(obj))
    x_z_caging = tolerance(tcp_obj_norm_x_z, 0.0, xz_margin, c.const["xz_margin"], "long_tail")
    caging = hamacher(y_caging, x_z_caging)
    gripping = np.where(caging > CAGING_GRIP_THRESHOLD, y_gripping, 0.0)
    return (caging + gripping) / 2


def _evaluate(c: Copies, obs: np.ndarray, target: np.ndarray, in_place_margin: np.ndarray, grip_margin: float,
              xz_margin: float) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """compute_reward + evaluate_state of both classes, given the target and in_place's margin."""
    obj, tcp_opened = obs[:, 4:7], obs[:, 3]
    obj_to_target = norm(obj - target)
    tcp_to_obj = norm(obj - c.tcp_center)
    in_place = tolerance(obj_to_target, 0.0, SWEEP_TARGET_RADIUS, in_place_margin, "long_tail")
    object_grasped = _caging(c, obj, grip_margin, xz_margin)
    reward = (2 * object_grasped) + (6 * hamacher(object_grasped, in_place))
    reward = np.where(obj_to_target < SWEEP_TARGET_RADIUS, 10.0, reward)
    opened = tcp_opened > 0
    grasp = c.touching("objGeom", opened) & opened  # touching_main_object and tcp_opened > 0
    info = {"success": (obj_to_target <= SWEEP_TARGET_RADIUS).astype(np.float64),
            "near_object": (tcp_to_obj <= SWEEP_NEAR_OBJECT).astype(np.float64),
            "grasp_success": grasp.astype(np.float64), "grasp_reward": object_grasped,
            "in_place_reward": in_place, "obj_to_target": obj_to_target, "unscaled_reward": reward}
    return reward, info


@native_class
class Sweep:
    """``SawyerSweepEnvV3`` (``sawyer_sweep_v3.py``): with o the puck, g the goal,
    in_place = tol(|o − g|, [0, 0.05], margin |obj_init − g|, long tail), grasp = the class's caging reward
    (grip bound 0.03, xz bound 0.005), r = 2 · grasp + 6 · hamacher(grasp, in_place), 10 when |o − g| < 0.05;
    success when |o − g| ≤ 0.05."""

    name, env_class = "sweep-v3", "SawyerSweepEnvV3"

    def constants(self, inner):
        return {"in_place_margin": float(np.linalg.norm(inner.obj_init_pos - inner._target_pos)),
                "xz_margin": _xz_margin(inner, SWEEP_XZ_MARGIN)}

    def objects(self, c):
        return c.body("obj"), c.body_quat("obj")

    def evaluate(self, c, obs, action):
        return _evaluate(c, obs, c.const["target"], c.const["in_place_margin"], SWEEP_GRIP_MARGIN, SWEEP_XZ_MARGIN)


@native_class
class SweepInto:
    """``SawyerSweepIntoGoalEnvV3`` (``sawyer_sweep_into_goal_v3.py``): as sweep-v3 with the target at the puck's
    height, g = (g_x, g_y, o_z), in_place's margin |obj_init − g| (so per step), grip bound 0.025, xz bound 0.01:
    r = 2 · grasp + 6 · hamacher(grasp, in_place), 10 when |o − g| < 0.05; success when |o − g| ≤ 0.05."""

    name, env_class = "sweep-into-v3", "SawyerSweepIntoGoalEnvV3"

    def constants(self, inner):
        return {"xz_margin": _xz_margin(inner, SWEEP_INTO_XZ_MARGIN)}

    def objects(self, c):
        return c.body("obj"), quat_from_xmat(c.geom_xmat("objGeom"))

    def evaluate(self, c, obs, action):
        target = np.concatenate([c.const["target"][:, :2], obs[:, 6:7]], axis=1)
        in_place_margin = norm(c.const["obj_init"] - target)
        return _evaluate(c, obs, target, in_place_margin, SWEEP_INTO_GRIP_MARGIN, SWEEP_INTO_XZ_MARGIN)

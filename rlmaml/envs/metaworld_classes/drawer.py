"""``drawer-close-v3`` and ``drawer-open-v3`` (metaworld's ``envs/sawyer_drawer_close_v3.py`` and
``envs/sawyer_drawer_open_v3.py``): the drawer's handle is the object, 16 cm in front of the body ``drawer_link``.
drawer-close-v3 follows metaworld's float32 terms exactly (its gripper term is the float32 action)."""

from __future__ import annotations

import numpy as np

from ..metaworld_rewards import gripper_effort, hamacher, native_class, norm, tolerance

DRAWER_CLOSE_TARGET_RADIUS = 0.05  # SawyerXYZEnv.TARGET_RADIUS, the one SawyerDrawerCloseEnvV3 reads
DRAWER_CLOSE_SUCCESS = DRAWER_CLOSE_TARGET_RADIUS + 0.015  # SawyerDrawerCloseEnvV3.evaluate_state / compute_reward
DRAWER_CLOSE_NEAR_OBJECT = 0.01  # SawyerDrawerCloseEnvV3.evaluate_state: near_object
DRAWER_CLOSE_REACH_RADIUS = 0.005  # SawyerDrawerCloseEnvV3.compute_reward: handle_reach_radius
DRAWER_CLOSE_HANDLE = np.array([0.0, -0.16, 0.05])  # SawyerDrawerCloseEnvV3._get_pos_objects: offset to drawer_link
DRAWER_OPEN_HANDLE = np.array([0.0, -0.16, 0.0])  # SawyerDrawerOpenEnvV3._get_pos_objects: offset to drawer_link
DRAWER_OPEN_MAX_DIST = 0.2  # SawyerDrawerOpenEnvV3.maxDist: the opening, the opening term's margin
DRAWER_OPEN_OPENED = 0.02  # SawyerDrawerOpenEnvV3.compute_reward: handle error within which opening is 1
DRAWER_OPEN_CAGED = 0.01  # SawyerDrawerOpenEnvV3.compute_reward: scaled gripper error within which caging is 1
DRAWER_OPEN_SCALE = np.array([3.0, 3.0, 1.0])  # SawyerDrawerOpenEnvV3.compute_reward: the gripper error's xyz scale
DRAWER_OPEN_SUCCESS = 0.03  # SawyerDrawerOpenEnvV3.evaluate_state: success (handle error)
DRAWER_OPEN_NEAR_OBJECT = 0.03  # SawyerDrawerOpenEnvV3.evaluate_state: near_object (gripper to handle)


@native_class
class DrawerClose:
    """``SawyerDrawerCloseEnvV3`` (``sawyer_drawer_close_v3.py``), h the handle, g the goal:
    reach = hamacher(tol(|h − tcp|, [0, 0.005], margin | |h₀ − tcp₀| − 0.005 |, gaussian), grip),
    grip = min(max(0, a₃), 1); r = 10 · hamacher(reach, tol(|h − g|, [0, 0.05], margin | |h₀ − g| − 0.05 |,
    long tail)), 10 when |h − g| ≤ 0.065 (success)."""

    name, env_class = "drawer-close-v3", "SawyerDrawerCloseEnvV3"

    def constants(self, inner):
        target_to_obj_init = np.linalg.norm(inner.obj_init_pos - inner._target_pos)
        tcp_to_obj_init = np.linalg.norm(inner.obj_init_pos - inner.init_tcp)
        return {"in_place_margin": float(abs(target_to_obj_init - DRAWER_CLOSE_TARGET_RADIUS)),
                "reach_margin": float(abs(tcp_to_obj_init - DRAWER_CLOSE_REACH_RADIUS))}

    def objects(self, c):
        return c.body("drawer_link") + DRAWER_CLOSE_HANDLE, np.zeros((c.n, 4))

    def evaluate(self, c, obs, action):
        obj = obs[:, 4:7]
        target_to_obj = norm(obj - c.const["target"])
        in_place = tolerance(target_to_obj, 0.0, DRAWER_CLOSE_TARGET_RADIUS, c.const["in_place_margin"], "long_tail")
        tcp_to_obj = norm(obj - c.tcp_center)
        reaching = tolerance(tcp_to_obj, 0.0, DRAWER_CLOSE_REACH_RADIUS, c.const["reach_margin"], "gaussian")
        reach = hamacher(reaching, gripper_effort(action))
        reward = 10 * hamacher(reach, in_place)
        # gripper_closed = min(max(0, action[-1]), 1) is the float32 action for 0 < action[-1] <= 1: the two
        # hamacher products and the reward made from them are then float32 (numpy's promotion rules)
        effort = action[:, -1]
        in_float32 = (effort > 0) & (effort <= 1)
        if in_float32.any():
            reach[in_float32], reward[in_float32] = _drawer_close_float32(
                reaching[in_float32], effort[in_float32], in_place[in_float32])
        success = target_to_obj <= DRAWER_CLOSE_SUCCESS
        reward = np.where(success, 10.0, reward)
        info = {"success": success.astype(np.float64),
                "near_object": (tcp_to_obj <= DRAWER_CLOSE_NEAR_OBJECT).astype(np.float64),
                "grasp_success": np.ones(c.n), "grasp_reward": reach, "in_place_reward": in_place,
                "obj_to_target": target_to_obj, "unscaled_reward": reward}
        return reward, info


def _hamacher32(a, b):
    """``reward_utils.hamacher_product`` of float32 numbers, in float32."""
    product = a * b
    denominator = a + b - product
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, product / denominator, np.float32(0))


def _drawer_close_float32(reach, effort, in_place):
    """The reach term and the reward of the copies whose gripper term is the float32 action: metaworld's
    ``hamacher_product(reach, gripper_closed)``, ``hamacher_product(reach, in_place)`` and ``reward *= 10`` compute
    in float32, the Python floats cast to float32."""
    f32 = np.float32
    reach = _hamacher32(reach.astype(f32), effort.astype(f32))
    reward = _hamacher32(reach, in_place.astype(f32)) * f32(10)
    return reach.astype(np.float64), reward.astype(np.float64)


@native_class
class DrawerOpen:
    """``SawyerDrawerOpenEnvV3`` (``sawyer_drawer_open_v3.py``), h the handle, g the goal, s = (3, 3, 1):
    r = 5 · (tol(|s ⊙ (h − hand)|, [0, 0.01], margin |s ⊙ (g + (0, 0.2, 0) − tcp₀)|, long tail)
    + tol(|h − g|, [0, 0.02], margin 0.2, long tail)); success when |h − g| ≤ 0.03."""

    name, env_class = "drawer-open-v3", "SawyerDrawerOpenEnvV3"

    def constants(self, inner):
        handle_pos_init = inner._target_pos + np.array([0.0, inner.maxDist, 0.0])
        gripper_error_init = (handle_pos_init - inner.init_tcp) * DRAWER_OPEN_SCALE
        return {"caging_margin": float(np.linalg.norm(gripper_error_init))}

    def objects(self, c):
        return c.body("drawer_link") + DRAWER_OPEN_HANDLE, c.body_quat("drawer_link")

    def evaluate(self, c, obs, action):
        gripper, handle = obs[:, :3], obs[:, 4:7]
        handle_error = norm(handle - c.const["target"])
        opening = tolerance(handle_error, 0.0, DRAWER_OPEN_OPENED, DRAWER_OPEN_MAX_DIST, "long_tail")
        caging = tolerance(norm((handle - gripper) * DRAWER_OPEN_SCALE), 0.0, DRAWER_OPEN_CAGED,
                           c.const["caging_margin"], "long_tail")
        reward = (caging + opening) * 5.0
        gripper_error = norm(handle - gripper)
        info = {"success": (handle_error <= DRAWER_OPEN_SUCCESS).astype(np.float64),
                "near_object": (gripper_error <= DRAWER_OPEN_NEAR_OBJECT).astype(np.float64),
                "grasp_success": (obs[:, 3] > 0).astype(np.float64), "grasp_reward": caging,
                "in_place_reward": opening, "obj_to_target": handle_error, "unscaled_reward": reward}
        return reward, info

"""``reach-v3`` and ``push-v3``: equal to metaworld's bit for bit, float32 terms included."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..metaworld_rewards import (
    CAGING_GRIP_THRESHOLD,
    hamacher,
    native_class,
    norm,
    object_caging,
    quat_from_xmat,
    tolerance,
)

if TYPE_CHECKING:
    from ..metaworld_native import Copies

REACH_TARGET_RADIUS = 0.05  # SawyerReachEnvV3.compute_reward's _TARGET_RADIUS, also its success radius
PUSH_TARGET_RADIUS = 0.05  # SawyerPushEnvV3.TARGET_RADIUS
PUSH_NEAR_OBJECT = 0.03  # SawyerPushEnvV3.evaluate_state: near_object
PUSH_REACH = 0.02  # SawyerPushEnvV3.compute_reward: tcp_to_obj below which the push term is added
PUSH_LIFT = 0.02  # SawyerPushEnvV3.evaluate_state: grasp_success needs the object this much above its start
PUSH_CAGING = {"obj_radius": 0.015, "pad_success_thresh": 0.05, "xz_thresh": 0.005}  # _gripper_caging_reward args


def _puck(c: Copies) -> tuple[np.ndarray, np.ndarray]:
    """The body ``obj``'s position and scipy's quaternion of its geom ``objGeom``'s frame."""
    return c.body("obj"), quat_from_xmat(c.geom_xmat("objGeom"))


@native_class
class Reach:
    """``SawyerReachEnvV3``: r = 10 · tol(|tcp − g|, [0, 0.05], margin |hand_init − g|, long tail); success when
    |tcp − g| ≤ 0.05."""

    name, env_class = "reach-v3", "SawyerReachEnvV3"

    def constants(self, inner):
        return {"in_place_margin": float(np.linalg.norm(inner.hand_init_pos - inner._target_pos))}

    def objects(self, c):
        return _puck(c)

    def evaluate(self, c, obs, action):
        tcp_to_target = norm(c.tcp_center - c.const["target"])
        in_place = tolerance(tcp_to_target, 0.0, REACH_TARGET_RADIUS, c.const["in_place_margin"], "long_tail")
        reward = 10 * in_place
        info = {"success": (tcp_to_target <= REACH_TARGET_RADIUS).astype(np.float64), "near_object": tcp_to_target,
                "grasp_success": np.ones(c.n), "grasp_reward": tcp_to_target, "in_place_reward": in_place,
                "obj_to_target": tcp_to_target, "unscaled_reward": reward}
        return reward, info


@native_class
class Push:
    """``SawyerPushEnvV3`` with ``_gripper_caging_reward(high_density=True)``: r = 2 · grasp, plus
    1 + r + 5 · in_place once the hand is within 2 cm of the puck with the gripper open, 10 at the goal."""

    name, env_class = "push-v3", "SawyerPushEnvV3"

    def constants(self, inner):
        return {"in_place_margin": float(np.linalg.norm(inner.obj_init_pos - inner._target_pos))}

    def objects(self, c):
        return _puck(c)

    def evaluate(self, c, obs, action):
        obj, tcp_opened, tcp = obs[:, 4:7], obs[:, 3], c.tcp_center
        target, obj_init = c.const["target"], c.const["obj_init"]
        tcp_to_obj = norm(obj - tcp)
        target_to_obj = norm(obj - target)
        in_place = tolerance(target_to_obj, 0.0, PUSH_TARGET_RADIUS, c.const["in_place_margin"], "long_tail")

        caging = object_caging(c, obj, **PUSH_CAGING)  # of SawyerXYZEnv._gripper_caging_reward
        # gripping = min(max(0, action[-1]), 1.0) / 1.0 if caging > 0.97 else 0.0, where action[-1] is a float32:
        # for 0 < action[-1] <= 1 it stays a float32 and so do the caging reward and the reward made from it
        effort = action[:, -1]
        gripped = (caging > CAGING_GRIP_THRESHOLD) & (effort > 0)
        gripping = np.where(gripped, np.minimum(effort, 1.0).astype(np.float64), 0.0)
        object_grasped = (hamacher(caging, gripping) + caging) / 2
        reward = 2 * object_grasped
        pushing = (tcp_to_obj < PUSH_REACH) & (tcp_opened > 0)
        reward = np.where(pushing, reward + (1.0 + reward + 5.0 * in_place), reward)
        in_float32 = gripped & (effort <= 1.0)
        if in_float32.any():
            object_grasped[in_float32], reward[in_float32] = _push_float32(
                caging[in_float32], effort[in_float32], in_place[in_float32], pushing[in_float32])
        reward = np.where(target_to_obj < PUSH_TARGET_RADIUS, 10.0, reward)

        lifted = (tcp_opened > 0) & (obj[:, 2] - PUSH_LIFT > obj_init[:, 2])
        grasp = c.touching("objGeom", lifted)  # touching_main_object needs the contacts at the new state
        info = {"success": (target_to_obj <= PUSH_TARGET_RADIUS).astype(np.float64),
                "near_object": (tcp_to_obj <= PUSH_NEAR_OBJECT).astype(np.float64),
                "grasp_success": grasp.astype(np.float64), "grasp_reward": object_grasped,
                "in_place_reward": in_place, "obj_to_target": target_to_obj, "unscaled_reward": reward}
        return reward, info


def _push_float32(caging, effort, in_place, pushing):
    """The caging reward and the reward of the copies whose gripping is the float32 action: metaworld's
    ``hamacher_product(caging, gripping)``, ``(… + caging) / 2``, ``2 * …`` and ``reward += 1.0 + reward +
    5.0 * in_place`` then compute in float32, the Python floats cast to float32 (numpy's promotion rules)."""
    f32 = np.float32
    a, b = caging.astype(f32), effort.astype(f32)
    product = a * b
    denominator = a + b - product
    with np.errstate(divide="ignore", invalid="ignore"):
        caging_and_gripping = np.where(denominator > 0, product / denominator, f32(0))
    object_grasped = (caging_and_gripping + a) / f32(2)
    reward = f32(2) * object_grasped
    reward = np.where(pushing, reward + (f32(1.0) + reward + (5.0 * in_place).astype(f32)), reward)
    return object_grasped.astype(np.float64), reward.astype(np.float64)

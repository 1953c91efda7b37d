"""``shelf-place-v3`` (``SawyerShelfPlaceEnvV3``, metaworld's ``envs/sawyer_shelf_place_v3.py``): the v2 reward and
success, in float64 (metaworld's float32 terms, from the float32 gripper effort, round alike to float32
precision)."""

from __future__ import annotations

import numpy as np

from ..metaworld_rewards import gripper_caging, hamacher, native_class, norm, quat_from_xmat, tolerance

SHELF_TARGET_RADIUS = 0.05  # SawyerShelfPlaceEnvV3.compute_reward's _TARGET_RADIUS: the reward is 10 within it
SHELF_SUCCESS = 0.07  # SawyerShelfPlaceEnvV3.evaluate_state: success radius
SHELF_NEAR_OBJECT = 0.03  # evaluate_state: near_object
SHELF_REACH = 0.025  # compute_reward: tcp_to_obj below which a lifted block adds 1 + 5 · in_place
SHELF_LIFT = 0.01  # compute_reward: the block this much above its start counts as lifted
SHELF_GRASP_LIFT = 0.02  # evaluate_state: grasp_success needs the block this much above its start
SHELF_HEIGHT = 0.24  # compute_reward: below this height the block is at the shelf's front or back
SHELF_HALF_WIDTH = 0.15  # compute_reward: half width in x of the region in front of / behind the goal
SHELF_CAGING = {"obj_radius": 0.02, "pad_success_thresh": 0.05, "object_reach_radius": 0.01,
                "xz_thresh": 0.01}  # compute_reward's _gripper_caging_reward args


@native_class
class ShelfPlace:
    """``SawyerShelfPlaceEnvV3``: in_place = tol(|block − g|, [0, 0.05], margin |obj_init − g|, long tail), less
    (y ⊗ z) in front of the shelf (block below 0.24, |x − gₓ| < 0.15, g_y − 0.15 < y < g_y; y = (y − g_y + 0.15) / 0.15,
    z = (0.24 − z) / 0.24, clipped to [0, 1]), 0 behind it (y > g_y); r = caging ⊗ tol(|block − g|), + 1 + 5 · in_place
    when lifted (|tcp − block| < 0.025, gripper open, block 1 cm above its start), 10 when |block − g| < 0.05
    (⊗ the Hamacher product). Success when |block − g| ≤ 0.07."""

    name, env_class = "shelf-place-v3", "SawyerShelfPlaceEnvV3"

    def constants(self, inner):
        return {"in_place_margin": float(np.linalg.norm(inner.obj_init_pos - inner._target_pos))}

    def objects(self, c):
        return c.body("obj"), quat_from_xmat(c.geom_xmat("objGeom"))

    def evaluate(self, c, obs, action):
        obj, tcp_opened, tcp = obs[:, 4:7], obs[:, 3], c.tcp_center
        target, obj_init = c.const["target"], c.const["obj_init"]
        obj_to_target = norm(obj - target)
        tcp_to_obj = norm(obj - tcp)
        in_place = tolerance(obj_to_target, 0.0, SHELF_TARGET_RADIUS, c.const["in_place_margin"], "long_tail")
        object_grasped = gripper_caging(c, action, obj, **SHELF_CAGING)
        reward = hamacher(object_grasped, in_place)

        depth = 3 * SHELF_TARGET_RADIUS
        x, y, z = obj[:, 0], obj[:, 1], obj[:, 2]
        low = (0.0 < z) & (z < SHELF_HEIGHT) & (target[:, 0] - SHELF_HALF_WIDTH < x) & (
            x < target[:, 0] + SHELF_HALF_WIDTH)
        in_front = low & (target[:, 1] - depth < y) & (y < target[:, 1])
        z_scaling = (SHELF_HEIGHT - z) / SHELF_HEIGHT
        y_scaling = (y - (target[:, 1] - depth)) / depth
        bound_loss = hamacher(y_scaling, z_scaling)
        in_place = np.where(in_front, np.clip(in_place - bound_loss, 0.0, 1.0), in_place)
        in_place = np.where(low & (y > target[:, 1]), 0.0, in_place)

        lifted = (tcp_to_obj < SHELF_REACH) & (tcp_opened > 0) & (z - SHELF_LIFT > obj_init[:, 2])
        reward = np.where(lifted, reward + (1.0 + 5.0 * in_place), reward)
        reward = np.where(obj_to_target < SHELF_TARGET_RADIUS, 10.0, reward)

        raised = (tcp_opened > 0) & (z - SHELF_GRASP_LIFT > obj_init[:, 2])
        grasp = raised & c.touching("objGeom", raised)  # touching_main_object: the contacts at the new state
        info = {"success": (obj_to_target <= SHELF_SUCCESS).astype(np.float64),
                "near_object": (tcp_to_obj <= SHELF_NEAR_OBJECT).astype(np.float64),
                "grasp_success": grasp.astype(np.float64), "grasp_reward": object_grasped,
                "in_place_reward": in_place, "obj_to_target": obj_to_target, "unscaled_reward": reward}
        return reward, info

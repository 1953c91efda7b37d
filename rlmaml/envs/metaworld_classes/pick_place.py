"""``pick-place-v3`` (``metaworld/envs/sawyer_pick_place_v3.py``, ``SawyerPickPlaceEnvV3``): the puck (body ``obj``,
geom ``objGeom``) is picked up and carried to the goal. The class has its own ``_gripper_caging_reward``, whose
"initial" pads ``init_left_pad``/``init_right_pad`` are views of ``data.xpos`` (``get_body_com``), so they are the
pads' current positions at every step."""

from __future__ import annotations

import numpy as np

from ..metaworld_rewards import (
    CAGING_GRIP_THRESHOLD,
    gripper_effort,
    hamacher,
    native_class,
    norm,
    quat_from_xmat,
    tolerance,
)

PICK_PLACE_TARGET_RADIUS = 0.05  # SawyerPickPlaceEnvV3.compute_reward's _TARGET_RADIUS: in_place's bound, reward 10
PICK_PLACE_SUCCESS = 0.07  # SawyerPickPlaceEnvV3.evaluate_state: obj_to_target at which it counts as placed
PICK_PLACE_NEAR_OBJECT = 0.03  # SawyerPickPlaceEnvV3.evaluate_state: near_object
PICK_PLACE_GRASP_LIFT = 0.02  # SawyerPickPlaceEnvV3.evaluate_state: grasp_success's lift above obj_init_pos
PICK_PLACE_REACH = 0.02  # SawyerPickPlaceEnvV3.compute_reward: tcp_to_obj below which the place term is added
PICK_PLACE_LIFT = 0.01  # SawyerPickPlaceEnvV3.compute_reward: the place term's lift above obj_init_pos
PICK_PLACE_PAD_MARGIN = 0.05  # SawyerPickPlaceEnvV3._gripper_caging_reward: pad_success_margin
PICK_PLACE_XZ_MARGIN = 0.005  # SawyerPickPlaceEnvV3._gripper_caging_reward: x_z_success_margin
PICK_PLACE_OBJ_RADIUS = 0.015  # SawyerPickPlaceEnvV3._gripper_caging_reward: obj_radius


def _xz(x: np.ndarray) -> np.ndarray:
    """``x + [0, -x[1], 0]`` of each row (metaworld's way of dropping y: y becomes exactly 0)."""
    return x + np.stack([np.zeros(len(x)), -x[:, 1], np.zeros(len(x))], axis=1)


@native_class
class PickPlace:
    """``SawyerPickPlaceEnvV3`` (``sawyer_pick_place_v3.py``), with o the puck (obs[4:7]), g the goal, l/r the
    pads' y now:

        in_place = tol(|o − g|, [0, 0.05], margin |obj_init − g|, long tail)
        cage_l = tol(l − o_y, [0.015, 0.05], margin ||o_y − l| − 0.05|), cage_r likewise with o_y − r (long tail)
        cage = hamacher(hamacher(cage_l, cage_r), tol(|tcp_xz − o_xz|, [0, 0.005], margin
               |obj_init_xz − init_tcp_xz| − 0.005, long tail))
        grasp = (hamacher(cage, [cage > 0.97] · clip(action[3], 0, 1)) + cage) / 2
        r = hamacher(grasp, in_place), + 1 + 5 · in_place when |o − tcp| < 0.02, obs[3] > 0 and o_z − 0.01 >
            obj_init_z; 10 when |o − g| < 0.05; success when |o − g| ≤ 0.07."""

    name, env_class = "pick-place-v3", "SawyerPickPlaceEnvV3"

    def constants(self, inner):
        init_obj_x_z = inner.obj_init_pos + np.array([0.0, -inner.obj_init_pos[1], 0.0])
        init_tcp_x_z = inner.init_tcp + np.array([0.0, -inner.init_tcp[1], 0.0])
        return {"in_place_margin": float(np.linalg.norm(inner.obj_init_pos - inner._target_pos)),
                "caging_xz_margin": float(np.linalg.norm(init_obj_x_z - init_tcp_x_z, ord=2) - PICK_PLACE_XZ_MARGIN)}

    def objects(self, c):
        return c.body("obj"), quat_from_xmat(c.geom_xmat("objGeom"))

    def evaluate(self, c, obs, action):
        obj, tcp_opened, tcp = obs[:, 4:7], obs[:, 3], c.tcp_center
        target, obj_init = c.const["target"], c.const["obj_init"]
        obj_to_target = norm(obj - target)
        tcp_to_obj = norm(obj - tcp)
        in_place = tolerance(obj_to_target, 0.0, PICK_PLACE_TARGET_RADIUS, c.const["in_place_margin"], "long_tail")

        # SawyerPickPlaceEnvV3._gripper_caging_reward (init_left_pad/init_right_pad are the current pads)
        left_y, right_y, obj_y = c.body("leftpad")[:, 1], c.body("rightpad")[:, 1], obj[:, 1]
        right_margin = np.abs(np.abs(obj_y - right_y) - PICK_PLACE_PAD_MARGIN)
        left_margin = np.abs(np.abs(obj_y - left_y) - PICK_PLACE_PAD_MARGIN)
        right_caging = tolerance(obj_y - right_y, PICK_PLACE_OBJ_RADIUS, PICK_PLACE_PAD_MARGIN, right_margin,
                                 "long_tail")
        left_caging = tolerance(left_y - obj_y, PICK_PLACE_OBJ_RADIUS, PICK_PLACE_PAD_MARGIN, left_margin,
                                "long_tail")
        y_caging = hamacher(left_caging, right_caging)
        x_z_caging = tolerance(norm(_xz(tcp) - _xz(obj)), 0.0, PICK_PLACE_XZ_MARGIN, c.const["caging_xz_margin"],
                               "long_tail")
        caging = hamacher(y_caging, x_z_caging)
        gripping = np.where(caging > CAGING_GRIP_THRESHOLD, gripper_effort(action), 0.0)
        object_grasped = (hamacher(caging, gripping) + caging) / 2

        reward = hamacher(object_grasped, in_place)
        placing = (tcp_to_obj < PICK_PLACE_REACH) & (tcp_opened > 0) & (obj[:, 2] - PICK_PLACE_LIFT > obj_init[:, 2])
        reward = np.where(placing, reward + (1.0 + 5.0 * in_place), reward)
        reward = np.where(obj_to_target < PICK_PLACE_TARGET_RADIUS, 10.0, reward)

        lifted = (tcp_opened > 0) & (obj[:, 2] - PICK_PLACE_GRASP_LIFT > obj_init[:, 2])
        grasp = c.touching("objGeom", lifted)  # touching_main_object: the contacts at the new state
        info = {"success": (obj_to_target <= PICK_PLACE_SUCCESS).astype(np.float64),
                "near_object": (tcp_to_obj <= PICK_PLACE_NEAR_OBJECT).astype(np.float64),
                "grasp_success": grasp.astype(np.float64), "grasp_reward": object_grasped,
                "in_place_reward": in_place, "obj_to_target": obj_to_target, "unscaled_reward": reward}
        return reward, info


"""``basketball-v3`` (``metaworld/envs/sawyer_basketball_v3.py``, ``SawyerBasketballEnvV3``): the ball (body
``bsktball``) is carried to above the hoop (``basket_goal``'s site ``goal``, with its height forced to 0.3)."""

from __future__ import annotations

import numpy as np

from ..metaworld_rewards import gripper_caging, hamacher, native_class, norm, tolerance

BASKETBALL_TARGET_RADIUS = 0.08  # SawyerBasketballEnvV3.TARGET_RADIUS: in_place's bound, reward 10 and success
BASKETBALL_TARGET_HEIGHT = 0.3  # SawyerBasketballEnvV3.compute_reward: target[2], slightly above the hoop
BASKETBALL_SCALE = np.array([1.0, 1.0, 2.0])  # SawyerBasketballEnvV3.compute_reward: scale, emphasising z
BASKETBALL_NEAR_OBJECT = 0.05  # SawyerBasketballEnvV3.evaluate_state: near_object
BASKETBALL_GRASP_LIFT = 0.03  # SawyerBasketballEnvV3.evaluate_state: grasp_success's lift above obj_init_pos
BASKETBALL_REACH = 0.035  # SawyerBasketballEnvV3.compute_reward: tcp_to_obj below which the ball counts as held
BASKETBALL_LIFT = 0.01  # SawyerBasketballEnvV3.compute_reward: the held ball's lift above obj_init_pos
BASKETBALL_CAGING = {"object_reach_radius": 0.01, "obj_radius": 0.025, "pad_success_thresh": 0.06,
                     "xz_thresh": 0.005}  # SawyerBasketballEnvV3.compute_reward: _gripper_caging_reward args


def _target(goal: np.ndarray) -> np.ndarray:
    """``_target_pos`` with its height forced to 0.3 (compute_reward's ``target``)."""
    target = np.array(goal, dtype=np.float64)
    target[..., 2] = BASKETBALL_TARGET_HEIGHT
    return target


@native_class
class Basketball:
    """``SawyerBasketballEnvV3`` (``sawyer_basketball_v3.py``), with o the ball (obs[4:7]), g = (goal_x, goal_y, 0.3),
    s = (1, 1, 2) and held = [|o − tcp| < 0.035, obs[3] > 0, o_z − 0.01 > obj_init_z]:

        in_place = tol(|s ⊙ (o − g)|, [0, 0.08], margin |s ⊙ (obj_init − g)|, long tail)
        grasp = 1 if held else _gripper_caging_reward(obj_radius 0.025, pad 0.06, xz 0.005, high density)
        r = hamacher(grasp, in_place), + 1 + 5 · in_place if held; 10 when |s ⊙ (o − g)| < 0.08 (also success)."""

    name, env_class = "basketball-v3", "SawyerBasketballEnvV3"

    def constants(self, inner):
        target = inner._target_pos.copy()
        target[2] = BASKETBALL_TARGET_HEIGHT
        return {"in_place_margin": float(np.linalg.norm((inner.obj_init_pos - target) * BASKETBALL_SCALE))}

    def objects(self, c):
        return c.body("bsktball"), c.body_quat("bsktball")

    def evaluate(self, c, obs, action):
        obj, tcp_opened = obs[:, 4:7], obs[:, 3]
        obj_init = c.const["obj_init"]
        # _target_pos is a view of data.site("goal").xpos: the site's current position
        target = _target(c.site("goal"))
        target_to_obj = norm((obj - target) * BASKETBALL_SCALE)
        in_place = tolerance(target_to_obj, 0.0, BASKETBALL_TARGET_RADIUS, c.const["in_place_margin"], "long_tail")
        tcp_to_obj = norm(obj - c.tcp_center)

        object_grasped = gripper_caging(c, action, obj, **BASKETBALL_CAGING, high_density=True)
        held = (tcp_to_obj < BASKETBALL_REACH) & (tcp_opened > 0) & (obj[:, 2] - BASKETBALL_LIFT > obj_init[:, 2])
        object_grasped = np.where(held, 1.0, object_grasped)
        reward = hamacher(object_grasped, in_place)
        reward = np.where(held, reward + (1.0 + 5.0 * in_place), reward)
        reward = np.where(target_to_obj < BASKETBALL_TARGET_RADIUS, 10.0, reward)

        lifted = (tcp_opened > 0) & (obj[:, 2] - BASKETBALL_GRASP_LIFT > obj_init[:, 2])
        info = {"success": (target_to_obj <= BASKETBALL_TARGET_RADIUS).astype(np.float64),
                "near_object": (tcp_to_obj <= BASKETBALL_NEAR_OBJECT).astype(np.float64),
                "grasp_success": lifted.astype(np.float64), "grasp_reward": object_grasped,
                "in_place_reward": in_place, "obj_to_target": target_to_obj, "unscaled_reward": reward}
        return reward, info

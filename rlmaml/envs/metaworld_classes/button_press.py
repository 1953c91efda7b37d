"""``button-press-topdown-v3`` (metaworld's ``envs/sawyer_button_press_topdown_v3.py``): the button's top, pressed
down to the site ``hole``."""

from __future__ import annotations

import numpy as np

from ..metaworld_rewards import hamacher, native_class, norm, tolerance

TOPDOWN_BUTTON_TOP = np.array([0.0, 0.0, 0.193])  # SawyerButtonPressTopdownEnvV3._get_pos_objects: offset to button
TOPDOWN_NEAR_BUTTON = 0.01  # SawyerButtonPressTopdownEnvV3.compute_reward: tcp_to_obj within which near_button is 1
TOPDOWN_PRESSED = 0.005  # SawyerButtonPressTopdownEnvV3.compute_reward: obj_to_target within which pressed is 1
TOPDOWN_PRESS_REACH = 0.03  # SawyerButtonPressTopdownEnvV3.compute_reward: tcp_to_obj below which pressing counts
TOPDOWN_SUCCESS = 0.024  # SawyerButtonPressTopdownEnvV3.evaluate_state: success (obj_to_target)
TOPDOWN_NEAR_OBJECT = 0.05  # SawyerButtonPressTopdownEnvV3.evaluate_state: near_object (tcp_to_obj)


@native_class
class ButtonPressTopdown:
    """``SawyerButtonPressTopdownEnvV3`` (``sawyer_button_press_topdown_v3.py``), b the button's top, g the goal:
    near = tol(|b − tcp|, [0, 0.01], margin |b − tcp₀| (the button's current position), long tail),
    pressed = tol(|g_z − b_z|, [0, 0.005], margin |g_z − start_z| (the site ``buttonStart`` at reset), long tail);
    r = 5 · hamacher(1 − opening, near), plus 5 · pressed when |b − tcp| ≤ 0.03; success when |g_z − b_z| ≤ 0.024."""

    name, env_class = "button-press-topdown-v3", "SawyerButtonPressTopdownEnvV3"

    def constants(self, inner):
        return {"obj_to_target_init": float(inner._obj_to_target_init)}

    def objects(self, c):
        return c.body("button") + TOPDOWN_BUTTON_TOP, c.body_quat("button")

    def evaluate(self, c, obs, action):
        obj, tcp = obs[:, 4:7], c.tcp_center
        tcp_to_obj = norm(obj - tcp)
        tcp_to_obj_init = norm(obj - c.const["init_tcp"])
        obj_to_target = np.abs(c.const["target"][:, 2] - obj[:, 2])
        near_button = tolerance(tcp_to_obj, 0.0, TOPDOWN_NEAR_BUTTON, tcp_to_obj_init, "long_tail")
        pressed = tolerance(obj_to_target, 0.0, TOPDOWN_PRESSED, c.const["obj_to_target_init"], "long_tail")
        reward = 5 * hamacher(1 - obs[:, 3], near_button)
        reward = np.where(tcp_to_obj <= TOPDOWN_PRESS_REACH, reward + 5 * pressed, reward)
        info = {"success": (obj_to_target <= TOPDOWN_SUCCESS).astype(np.float64),
                "near_object": (tcp_to_obj <= TOPDOWN_NEAR_OBJECT).astype(np.float64),
                "grasp_success": (obs[:, 3] > 0).astype(np.float64), "grasp_reward": near_button,
                "in_place_reward": pressed, "obj_to_target": obj_to_target, "unscaled_reward": reward}
        return reward, info

"""``window-open-v3`` (metaworld's ``envs/sawyer_window_open_v3.py``, ``SawyerWindowOpenEnvV3``): no float32 terms
(the v2 reward does not read the action), equal to metaworld's to float64 rounding."""

from __future__ import annotations

import numpy as np

from ..metaworld_rewards import hamacher, native_class, norm, tolerance

WINDOW_TARGET_RADIUS = 0.05  # SawyerWindowOpenEnvV3.TARGET_RADIUS: in_place bound and the success radius
WINDOW_HANDLE_RADIUS = 0.02  # SawyerWindowOpenEnvV3.compute_reward: handle_radius, the reach bound
WINDOW_NEAR_OBJECT = 0.05  # SawyerWindowOpenEnvV3.evaluate_state: near_object


@native_class
class WindowOpen:
    """``SawyerWindowOpenEnvV3``: with h the site ``handleOpenStart``,
    in_place = tol(|h_x − g_x|, [0, 0.05], margin ||obj_init_x − g_x| − 0.05|, long tail),
    reach = tol(|tcp − h|, [0, 0.02], margin ||h_init − tcp_init| − 0.02|, long tail),
    r = 10 · hamacher(reach, in_place); success when |h_x − g_x| ≤ 0.05."""

    name, env_class = "window-open-v3", "SawyerWindowOpenEnvV3"

    def constants(self, inner):
        target_to_obj_init = float(np.linalg.norm(inner.obj_init_pos[0] - inner._target_pos[0]))
        tcp_to_obj_init = float(np.linalg.norm(inner.window_handle_pos_init - inner.init_tcp))
        return {"in_place_margin": abs(target_to_obj_init - WINDOW_TARGET_RADIUS),
                "reach_margin": abs(tcp_to_obj_init - WINDOW_HANDLE_RADIUS)}

    def objects(self, c):
        return c.site("handleOpenStart"), np.zeros((c.n, 4))

    def evaluate(self, c, obs, action):
        obj, tcp, target = c.site("handleOpenStart"), c.tcp_center, c.const["target"]
        target_to_obj = norm((obj[:, 0] - target[:, 0])[:, None])  # np.linalg.norm of the x difference
        in_place = tolerance(target_to_obj, 0.0, WINDOW_TARGET_RADIUS, c.const["in_place_margin"], "long_tail")
        tcp_to_obj = norm(obj - tcp)
        reach = tolerance(tcp_to_obj, 0.0, WINDOW_HANDLE_RADIUS, c.const["reach_margin"], "long_tail")
        reward = 10 * hamacher(reach, in_place)
        info = {"success": (target_to_obj <= WINDOW_TARGET_RADIUS).astype(np.float64),
                "near_object": (tcp_to_obj <= WINDOW_NEAR_OBJECT).astype(np.float64),
                "grasp_success": np.ones(c.n), "grasp_reward": reach, "in_place_reward": in_place,
                "obj_to_target": target_to_obj, "unscaled_reward": reward}
        return reward, info

"""``lever-pull-v3`` (``metaworld/envs/sawyer_lever_pull_v3.py``): the lever's tip (site ``leverStart``) is the
object, its joint ``LeverAxis`` the angle the success reads."""

from __future__ import annotations

import numpy as np

from ..metaworld_rewards import hamacher, native_class, norm, quat_from_xmat, tolerance

LEVER_RADIUS = 0.2  # SawyerLeverPullEnvV3.LEVER_RADIUS
LEVER_TIP_INIT = np.array([0.12, -LEVER_RADIUS, 0.25])  # reset_model: _lever_pos_init, from obj_init_pos
SHOULDER_SCALE = np.array([4.0, 1.0, 4.0])  # compute_reward: scale (de-emphasises y)
SHOULDER_OFFSET = np.array([0.0, 0.055, 0.07])  # compute_reward: offset (the shoulder, from the hand)
READY_BOUND = 0.02  # compute_reward: ready_to_lift's bounds (0, 0.02)
LEVER_ANGLE_DESIRED = np.pi / 2.0  # compute_reward: lever_angle_desired
ENGAGEMENT_BOUND = np.pi / 48.0  # compute_reward: lever_engagement's bounds (0, π/48)
ENGAGEMENT_MARGIN = (np.pi / 2.0) - (np.pi / 12.0)  # compute_reward: lever_engagement's margin
IN_PLACE_BOUND = 0.04  # compute_reward: in_place's bounds (0, 0.04)
LEVER_SUCCESS = np.pi / 24  # evaluate_state: lever_error at which it succeeds
NEAR_OBJECT = 0.03  # evaluate_state: near_object when |shoulder_to_lever| < 0.03
READY_GRASP = 0.9  # evaluate_state: grasp_success when ready_to_lift > 0.9


@native_class
class LeverPull:
    """``SawyerLeverPullEnvV3`` (``sawyer_lever_pull_v3.py``), with h the hand (obs[:3]), l the lever's tip
    (obs[4:7]), l₀ = obj_init + (0.12, −0.2, 0.25), g the goal and α = −LeverAxis:

        s = (h + (0, 0.055, 0.07) − l) ⊙ (4, 1, 4),  s₀ the same of init_tcp and l₀
        ready = tol(|s|, [0, 0.02], margin |s₀|, long tail)
        in_place = tol(|l − g|, [0, 0.04], margin |l₀ − g|, long tail)
        r = 10 · hamacher(ready, in_place); success when |α − π/2| ≤ π/24,
        in_place_reward = tol(|α − π/2|, [0, π/48], margin 5π/12, long tail)."""

    name, env_class = "lever-pull-v3", "SawyerLeverPullEnvV3"

    def constants(self, inner):
        lever_init = inner._lever_pos_init
        shoulder_init = (inner.init_tcp + SHOULDER_OFFSET - lever_init) * SHOULDER_SCALE
        return {"ready_margin": float(np.linalg.norm(shoulder_init)),
                "in_place_margin": float(np.linalg.norm(lever_init - inner._target_pos))}

    def objects(self, c):
        return c.site("leverStart"), quat_from_xmat(c.geom_xmat("objGeom"))

    def evaluate(self, c, obs, action):
        gripper, lever, target = obs[:, :3], obs[:, 4:7], c.const["target"]
        shoulder_to_lever = norm((gripper + SHOULDER_OFFSET - lever) * SHOULDER_SCALE)
        ready = tolerance(shoulder_to_lever, 0.0, READY_BOUND, c.const["ready_margin"], "long_tail")
        lever_angle = -c.qpos("LeverAxis")[:, 0]
        lever_error = np.abs(lever_angle - LEVER_ANGLE_DESIRED)
        engagement = tolerance(lever_error, 0.0, ENGAGEMENT_BOUND, ENGAGEMENT_MARGIN, "long_tail")
        obj_to_target = norm(lever - target)
        in_place = tolerance(obj_to_target, 0.0, IN_PLACE_BOUND, c.const["in_place_margin"], "long_tail")
        reward = 10.0 * hamacher(ready, in_place)
        info = {"success": (lever_error <= LEVER_SUCCESS).astype(np.float64),
                "near_object": (shoulder_to_lever < NEAR_OBJECT).astype(np.float64),
                "grasp_success": (ready > READY_GRASP).astype(np.float64), "grasp_reward": ready,
                "in_place_reward": engagement, "obj_to_target": shoulder_to_lever, "unscaled_reward": reward}
        return reward, info

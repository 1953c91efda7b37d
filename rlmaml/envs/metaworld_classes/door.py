"""``door-open-v3`` (``metaworld/envs/sawyer_door_v3.py``) and ``door-close-v3``
(``metaworld/envs/sawyer_door_close_v3.py``): the door's handle (geom ``handle``) is the object of both."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..metaworld_rewards import hamacher, native_class, norm, quat_from_xmat, tolerance

if TYPE_CHECKING:
    from ..metaworld_native import Copies

# SawyerDoorEnvV3
DOOR_OPEN_SUCCESS = 0.08  # evaluate_state/compute_reward: |handle_x − goal_x| at which the door counts as open
DOOR_HANDLE_OFFSET = np.array([-0.05, 0.0, 0.0])  # _reward_pos: the door point, from the handle
DOOR_FUNNEL_RADIUS = 0.12  # _reward_pos: threshold, the radius of the floor's funnel around the door point
DOOR_FUNNEL_SLOPE, DOOR_FUNNEL_BASE = 0.04, 0.4  # _reward_pos: floor = 0.04 · log(radius − 0.12) + 0.4
DOOR_FLOOR_BOUND = 0.01  # _reward_pos: above_floor's bounds (0, 0.01)
DOOR_READY_OFFSET = np.array([0.05, 0.03, -0.01])  # _reward_pos: in_place's hand position, from the door point
DOOR_READY_MARGIN = 0.5  # _reward_pos: in_place's margin
DOOR_TRY_ANGLE = -np.pi / 90.0  # _reward_pos: theta below which trying to open counts
DOOR_TRY_WEIGHT, DOOR_OPEN_WEIGHT = 0.2, 0.8  # _reward_pos: a and b
DOOR_OPEN_ANGLE = np.pi / 2.0 + np.pi / 6  # _reward_pos: the door angle opened aims at
DOOR_OPEN_BOUND, DOOR_OPEN_MARGIN = 0.5, np.pi / 3.0  # _reward_pos: opened's bounds (0, 0.5) and margin
GRIPPER_OPEN_GRASP = 0.5  # evaluate_state: grasp_success when reward_grab ≥ 0.5

# SawyerDoorCloseEnvV3
DOOR_CLOSE_TARGET_RADIUS = 0.05  # compute_reward's _TARGET_RADIUS: in_place's bound and the reward-10 radius
DOOR_CLOSE_SUCCESS = 0.08  # evaluate_state: obj_to_target at which the door counts as closed
DOOR_CLOSE_HAND_BOUND = 0.25 * DOOR_CLOSE_TARGET_RADIUS  # compute_reward: hand_in_place's bounds (0, 0.0125)
DOOR_CLOSE_HAND_MARGIN = 0.1  # compute_reward: hand_margin = |hand_init − handle| + 0.1


def _handle(c: Copies) -> tuple[np.ndarray, np.ndarray]:
    """The geom ``handle``'s position and scipy's quaternion of its frame."""
    return c.geom("handle"), quat_from_xmat(c.geom_xmat("handle"))


@native_class
class DoorOpen:
    """``SawyerDoorEnvV3`` (``sawyer_door_v3.py``), with h the hand (obs[:3]), d = handle − (0.05, 0, 0), θ the door
    joint and grab = (clip(action[3], −1, 1) + 1) / 2 (float32):

        floor = 0 if ρ = |h_xy − d_xy| ≤ 0.12 else 0.04 · log(ρ − 0.12) + 0.4
        above = 1 if h_z ≥ floor else tol(floor − h_z, [0, 0.01], margin floor / 2, long tail)
        ready = hamacher(above, tol(|h − d − (0.05, 0.03, −0.01)|, [0, 0.06], margin 0.5, long tail))
        opened = 0.2 · [θ < −π/90] + 0.8 · tol(2π/3 + θ, [0, 0.5], margin π/3, long tail)
        r = 2 · hamacher(ready, grab) + 8 · opened, 10 when |handle_x − goal_x| ≤ 0.08 (also success)."""

    name, env_class = "door-open-v3", "SawyerDoorEnvV3"

    def constants(self, inner):
        return {}

    def objects(self, c):
        return _handle(c)

    def evaluate(self, c, obs, action):
        # _reward_grab_effort: float32 arithmetic on the float32 action, then float()
        f32 = np.float32
        grab = ((np.clip(action[:, 3], f32(-1), f32(1)) + f32(1.0)) / f32(2.0)).astype(np.float64)

        # _reward_pos
        hand = obs[:, :3]
        door = obs[:, 4:7] + DOOR_HANDLE_OFFSET
        radius = norm(hand[:, :2] - door[:, :2])
        with np.errstate(divide="ignore", invalid="ignore"):
            funnel = DOOR_FUNNEL_SLOPE * np.log(radius - DOOR_FUNNEL_RADIUS) + DOOR_FUNNEL_BASE
        floor = np.where(radius <= DOOR_FUNNEL_RADIUS, 0.0, funnel)
        above_floor = np.where(hand[:, 2] >= floor, 1.0,
                               tolerance(floor - hand[:, 2], 0.0, DOOR_FLOOR_BOUND, floor / 2.0, "long_tail"))
        in_place = tolerance(norm(hand - door - DOOR_READY_OFFSET), 0.0, DOOR_FUNNEL_RADIUS / 2.0, DOOR_READY_MARGIN,
                             "long_tail")
        ready = hamacher(above_floor, in_place)
        theta = c.qpos("doorjoint")[:, 0]
        opened = DOOR_TRY_WEIGHT * (theta < DOOR_TRY_ANGLE).astype(np.float64) + DOOR_OPEN_WEIGHT * tolerance(
            DOOR_OPEN_ANGLE - (-theta), 0.0, DOOR_OPEN_BOUND, DOOR_OPEN_MARGIN, "long_tail")

        # compute_reward
        reward = 0 + 2.0 * hamacher(ready, grab) + 8.0 * opened
        success = np.abs(obs[:, 4] - c.const["target"][:, 0]) <= DOOR_OPEN_SUCCESS
        reward = np.where(success, 10.0, reward)
        info = {"success": success.astype(np.float64), "near_object": ready,
                "grasp_success": (grab >= GRIPPER_OPEN_GRASP).astype(np.float64), "grasp_reward": grab,
                "in_place_reward": opened, "obj_to_target": np.zeros(c.n), "unscaled_reward": reward}
        return reward, info


@native_class
class DoorClose:
    """``SawyerDoorCloseEnvV3`` (``sawyer_door_close_v3.py``), with o the handle (obs[4:7]) and g the goal:

        in_place = tol(|o − g|, [0, 0.05], margin |obj_init − g|, gaussian)
        hand = tol(|tcp − g|, [0, 0.0125], margin |hand_init − o| + 0.1, gaussian)
        r = 3 · hand + 6 · in_place, 10 when |o − g| < 0.05; success when |o − g| ≤ 0.08."""

    name, env_class = "door-close-v3", "SawyerDoorCloseEnvV3"

    def constants(self, inner):
        return {"in_place_margin": float(np.linalg.norm(inner.obj_init_pos - inner._target_pos))}

    def objects(self, c):
        return _handle(c)

    def evaluate(self, c, obs, action):
        obj, target = obs[:, 4:7], c.const["target"]
        tcp_to_target = norm(c.tcp_center - target)
        obj_to_target = norm(obj - target)
        in_place = tolerance(obj_to_target, 0.0, DOOR_CLOSE_TARGET_RADIUS, c.const["in_place_margin"], "gaussian")
        hand_margin = norm(c.const["hand_init"] - obj) + DOOR_CLOSE_HAND_MARGIN
        hand_in_place = tolerance(tcp_to_target, 0.0, DOOR_CLOSE_HAND_BOUND, hand_margin, "gaussian")
        reward = 3 * hand_in_place + 6 * in_place
        reward = np.where(obj_to_target < DOOR_CLOSE_TARGET_RADIUS, 10.0, reward)
        info = {"success": (obj_to_target <= DOOR_CLOSE_SUCCESS).astype(np.float64), "near_object": np.zeros(c.n),
                "grasp_success": np.ones(c.n), "grasp_reward": np.ones(c.n), "in_place_reward": hand_in_place,
                "obj_to_target": obj_to_target, "unscaled_reward": reward}
        return reward, info

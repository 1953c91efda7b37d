"""``peg-insert-side-v3`` (``SawyerPegInsertionSideEnvV3``, metaworld's ``envs/sawyer_peg_insertion_side_v3.py``):
the v2 reward and success, in float64 (metaworld's float32 terms, from the float32 gripper effort, round alike to
float32 precision)."""

from __future__ import annotations

import numpy as np

from ..metaworld_rewards import gripper_caging, hamacher, native_class, norm, quat_from_xmat, tolerance

PEG_TARGET_RADIUS = 0.07  # SawyerPegInsertionSideEnvV3.TARGET_RADIUS, also evaluate_state's success radius
PEG_HEAD_SCALE = np.array([1.0, 2.0, 2.0])  # compute_reward: scale of the peg head's offset to the hole (y, z twice)
PEG_GRASPED_REACH = 0.08  # compute_reward: tcp_to_obj below which a lifted peg counts as grasped
PEG_LIFT = 0.01  # compute_reward, evaluate_state: the peg this much above its start counts as lifted
PEG_GRASP_SUCCESS = 0.02  # evaluate_state: tcp_to_obj below which a lifted peg is grasp_success
PEG_NEAR_OBJECT = 0.03  # evaluate_state: near_object
PEG_CAGING = {"obj_radius": 0.0075, "pad_success_thresh": 0.03, "object_reach_radius": 0.01,
              "xz_thresh": 0.005}  # compute_reward's _gripper_caging_reward args (with high_density=True)
#: compute_reward's collision boxes (rect_prism_tolerance of the peg head): (corner of value 1, corner of value 0)
COLLISION_BOXES = (("top_left_corner_collision_box_1", "bottom_right_corner_collision_box_1"),
                   ("top_left_corner_collision_box_2", "bottom_right_corner_collision_box_2"))


def rect_prism_tolerance(curr: np.ndarray, zero: np.ndarray, one: np.ndarray) -> np.ndarray:
    """``reward_utils.rect_prism_tolerance`` of each row: inside the box spanned by ``zero`` and ``one`` the product
    of the scaled coordinates (x · y) · z, each (curr − zero) / (one − zero); 1 outside."""
    inside = np.all((np.minimum(zero, one) <= curr) & (curr <= np.maximum(zero, one)), axis=1)
    diff = one - zero
    with np.errstate(divide="ignore", invalid="ignore"):
        scales = (curr - zero) / diff
    return np.where(inside, scales[:, 0] * scales[:, 1] * scales[:, 2], 1.0)


@native_class
class PegInsertSide:
    """``SawyerPegInsertionSideEnvV3``: with d = |(head − g) ⊙ (1, 2, 2)| (the peg head to the hole),
    in_place = tol(d, [0, 0.07], margin |(head_init − g) ⊙ (1, 2, 2)|, long tail) ⊗ box₂ ⊗ box₁ (the collision
    boxes' rect_prism_tolerance of the head), grasp = caging(high density), 1 when lifted (|tcp − peg| < 0.08, gripper
    open, peg 1 cm above its start); r = grasp ⊗ in_place, + 1 + 5 · in_place when lifted, 10 when d ≤ 0.07
    (⊗ the Hamacher product). Success when d ≤ 0.07."""

    name, env_class = "peg-insert-side-v3", "SawyerPegInsertionSideEnvV3"

    def constants(self, inner):
        # peg_head_pos_init is read in reset_model before the peg is moved to obj_init_pos
        margin = float(np.linalg.norm((inner.peg_head_pos_init - inner._target_pos) * PEG_HEAD_SCALE))
        return {"in_place_margin": margin}

    def objects(self, c):
        return c.site("pegGrasp"), quat_from_xmat(c.site_xmat("pegGrasp"))

    def evaluate(self, c, obs, action):
        obj, tcp_opened, tcp = obs[:, 4:7], obs[:, 3], c.tcp_center
        target, obj_init = c.const["target"], c.const["obj_init"]
        head = c.site("pegHead")
        tcp_to_obj = norm(obj - tcp)
        obj_to_target = norm((head - target) * PEG_HEAD_SCALE)
        in_place = tolerance(obj_to_target, 0.0, PEG_TARGET_RADIUS, c.const["in_place_margin"], "long_tail")
        box_1, box_2 = (rect_prism_tolerance(head, zero=c.site(zero), one=c.site(one)) for one, zero in COLLISION_BOXES)
        in_place = hamacher(in_place, hamacher(box_2, box_1))

        object_grasped = gripper_caging(c, action, obj, high_density=True, **PEG_CAGING)
        lifted = (obj[:, 2] - PEG_LIFT > obj_init[:, 2]) & (tcp_opened > 0)
        holding = lifted & (tcp_to_obj < PEG_GRASPED_REACH)
        object_grasped = np.where(holding, 1.0, object_grasped)
        reward = hamacher(object_grasped, in_place)
        reward = np.where(holding, reward + (1.0 + 5 * in_place), reward)
        reward = np.where(obj_to_target <= PEG_TARGET_RADIUS, 10.0, reward)

        info = {"success": (obj_to_target <= PEG_TARGET_RADIUS).astype(np.float64),
                "near_object": (tcp_to_obj <= PEG_NEAR_OBJECT).astype(np.float64),
                "grasp_success": (lifted & (tcp_to_obj < PEG_GRASP_SUCCESS)).astype(np.float64),
                "grasp_reward": object_grasped, "in_place_reward": in_place, "obj_to_target": obj_to_target,
                "unscaled_reward": reward}
        return reward, info

"""Meta-World task classes for the native engine (:mod:`rlmaml.envs.metaworld_native`), one module per family of
classes. Each module registers its classes with :func:`~rlmaml.envs.metaworld_native.native_class`; importing this
package registers them all. A class's numbers are those written in its ``compute_reward`` and ``evaluate_state``
in metaworld 3.1.1 (``metaworld/envs/sawyer_<name>_v3.py``); ``docs/extending/metaworld-class.md`` says how to
add one and how it is tested."""

from . import (  # noqa: F401
    basketball,
    button_press,
    door,
    drawer,
    lever_pull,
    peg_insert_side,
    pick_place,
    reach_push,
    shelf_place,
    sweep,
    window,
)

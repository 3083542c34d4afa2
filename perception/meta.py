"""What a perception network's checkpoint says it is, readable without torch (commands
check their target before anything heavy loads)."""

from __future__ import annotations

from pilot.errors import UserError

#: the ``algorithm`` a perception network's checkpoint metadata carries
ALGORITHM = "perception-fusion"


def check_network_meta(meta: dict, where: object) -> None:
    """Refuse the checkpoint metadata ``meta`` (of the file ``where``) unless it holds a
    perception network; an RL agent's checkpoint is named as what it is."""
    if meta.get("algorithm") == ALGORITHM:
        return
    if meta.get("algo"):
        raise UserError(
            f"{where} holds a {meta['algo']} agent for {meta.get('env_id', '?')}, not a "
            "perception network (pilot watch and pilot eval play agents)"
        )
    raise UserError(f"{where} is not a perception network's checkpoint")

"""Atari worlds (placeholder until the Atari module lands)."""

ATARI_GAMES: tuple[str, ...] = ()


def register_atari(descriptions: dict[str, str]) -> None:
    return None


def make_atari_vec(env_id: str, n_envs: int, seed: int, training: bool = True, **kwargs):
    raise RuntimeError("Atari vector envs are not built yet")

"""The General Pattern Theory code's pattern-theory growth process (docs/methods.md#gpt-data): tables,
``compenv``, ``growth1``, ``develop``.

A board is an ``(L, L)`` array of 1-based generator codes ``n = nBSG*(i-1) + k`` (``i`` the generator
type 1..4, ``k`` the bond-symmetry-group element 1..8). Type 1 is the empty background, type 2 the seed
generator, type 4 the terminal. Every function here is pure numpy and deterministic; randomness lives in
``pattern_digits``.
"""

from __future__ import annotations

import numpy as np

L = 28
#: Topology: the 8 neighbours as rows (dx, dy).
J = np.array([[0, 1], [1, 1], [1, 0], [1, -1], [0, -1], [-1, -1], [-1, 0], [-1, 1]])
NJ = 8
NBSG = 8
#: Generator table: bond value of each of the 4 types towards each of the 8 neighbours.
G0 = np.array(
    [
        [0, 0, 0, 0, 0, 0, 0, 0],  # type 1: empty
        [2, 3, 4, 0, 0, 0, 0, 0],  # type 2: the seed generator
        [0, 0, 0, 0, 0, 0, 0, 2],  # type 3
        [0, 0, 0, 0, 0, 0, 0, 0],  # type 4: terminal
    ]
)
NG0 = G0.shape[0] - 1  # 3 non-empty types
NGE = NBSG * (NG0 + 1)  # 32 codes


def bond_symmetry_group() -> np.ndarray:
    """``BSG[i] = roll([1..8], i)`` (cyclic permutations of the neighbours, 1-based), shape (8, 8)."""
    base = np.arange(1, NJ + 1)
    return np.stack([np.roll(base, i) for i in range(NBSG)])


BSG = bond_symmetry_group()


def extended_generators() -> np.ndarray:
    """``GE[k + i*nBSG, :] = G0[i, BSG[k]-1]``: every type under every group element, shape (32, 8)."""
    ge = np.zeros((NGE, NJ), dtype=np.int64)
    for i in range(NG0 + 1):
        for k in range(NBSG):
            ge[k + i * NBSG, :] = G0[i, BSG[k] - 1]
    return ge


GE = extended_generators()
_GE_COLUMNS = GE.T.astype(np.int16).copy()  # [k] -> bond value towards direction k of every code


def code(i: int | np.ndarray, k: int | np.ndarray) -> int | np.ndarray:
    """The 1-based code of generator type ``i`` (1-based) under group element ``k`` (1-based)."""
    return NBSG * (i - 1) + k


def decode(n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes -> (type ``i``, group element ``k``), both 1-based, as int64 arrays."""
    n = np.asarray(n, dtype=np.int64)
    i = 1 + (n - 1) // NBSG
    return i, n - NBSG * (i - 1)


def compenv(board: np.ndarray) -> np.ndarray:
    """The bond values reaching every cell from each of the 8 directions, shape (8, ..., L, L).

    ``ENV[k][r, c] = GE[board[(r + J[k,1]) mod L, (c - J[k,0]) mod L] - 1, k]`` (the original General
    Pattern Theory code's default ``compenv_mode=None``: roll right by ``J[k,0]``, then down by
    ``-J[k,1]``, wrapping around).
    """
    board = np.asarray(board, dtype=np.int16)
    env = np.empty((NJ, *board.shape), dtype=np.int16)
    for k in range(NJ):
        shifted = np.roll(np.roll(board, J[k, 0], axis=-1), -J[k, 1], axis=-2)
        env[k] = _GE_COLUMNS[k][shifted - 1]
    return env


def growth1(board: np.ndarray, env: np.ndarray) -> np.ndarray:
    """One growth step (the original code's ``growth_mode=None``).

    An empty cell (code <= nBSG) with exactly one incoming bond becomes the generator the bond names,
    oriented by the bond's direction; an empty cell with 2-3 or >= 6 incoming bonds becomes the terminal
    code nGE-1 = 31; every other cell keeps its code.
    """
    board = np.asarray(board, dtype=np.int16)
    present = env > 0
    n_eff = present.sum(axis=0, dtype=np.int16)
    empty = board <= NBSG
    change = empty & (n_eff == 1)
    d = env.sum(axis=0, dtype=np.int16)
    e = np.zeros(board.shape, dtype=np.int16)
    for k in range(NJ):
        e += (k + 1) * present[k]
    b = code(d, e)
    tri = empty & ((n_eff == 2) | (n_eff == 3))
    sur = empty & (n_eff >= 6)
    # board*(1-CHANGE)*(1-TRI)*(1-SUR) + CHANGE*B + (TRI + SUR)*(nGE-1); the three masks are disjoint
    return np.where(change, b, np.where(tri | sur, NGE - 1, board)).astype(np.int16)


def develop(t_max: int, board: np.ndarray) -> np.ndarray:
    """``t_max`` rounds of ``compenv`` + ``growth1``."""
    board = np.asarray(board, dtype=np.int16)
    for _ in range(t_max):
        board = growth1(board, compenv(board))
    return board.astype(np.int64)


def develop_batch(t_max: np.ndarray, boards: np.ndarray) -> np.ndarray:
    """:func:`develop` of each board ``boards[n]`` (N, L, L) for its own ``t_max[n]`` rounds, vectorised
    (a board stops changing once its rounds are done); equal to developing them one by one."""
    boards = np.asarray(boards, dtype=np.int16)
    t_max = np.asarray(t_max, dtype=np.int64)
    for step in range(int(t_max.max(initial=0))):
        grown = growth1(boards, compenv(boards))
        boards = np.where((step < t_max)[:, None, None], grown, boards)
    return boards.astype(np.int64)

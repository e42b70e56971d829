"""Run an exported sparse actor with NumPy alone. This file imports nothing but NumPy: copy it
onto a device beside the exported ``.npz`` (``dsa-jax export RUN --with-runtime`` does) and
run it there without JAX or the rest of the package.

The episode loop on the device, for agent ``a`` of an exported seed::

    actor = SparseActor.load("actor_seed0.npz", a)
    actor.reset()                      # zero hidden state: the start of an episode
    obs = actor.first_observation()    # all zeros: nothing has been heard yet
    for slot in range(T):
        action = actor.act(obs)        # 0 = stay idle, k = transmit on channel k
        obs = ...                      # this slot's observation, as the environment encodes it
                                       # (action one-hot, ACK/NACK/busy feedback, received SNR)

``act`` and ``step`` advance the hidden state by one slot: call exactly one of them per slot.

Format (one ``.npz`` per run seed): for agent ``a`` and each weight matrix ``W`` ``[in, out]``
of the actor (``lstm1/input_kernel``, ``lstm1/recurrent_kernel``, ``lstm2/...``,
``head/kernel``), the nonzeros of ``W`` column by column, i.e. CSR of ``W.T``:
``a{a}/{name}/indptr`` ``[out+1]``, ``/indices`` (input rows) and ``/data`` (float32), each index
array in the smallest unsigned integer type its values allow, plus ``/shape``. Biases are dense
float32 (``a{a}/{layer}/bias``). ``meta`` is a JSON string with the sizes.
"""

from __future__ import annotations

import json

import numpy as np

MATRICES = ("lstm1/input_kernel", "lstm1/recurrent_kernel", "lstm2/input_kernel", "lstm2/recurrent_kernel", "head/kernel")
BIASES = ("lstm1/bias", "lstm2/bias", "head/bias")


def index_dtype(max_value: int) -> np.dtype:
    """The smallest unsigned integer type that holds ``max_value``."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if max_value <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.uint64)


class SparseMatrix:
    """``W`` ``[in, out]`` stored as CSR of ``W.T``; ``x @ W`` costs one multiply-add per nonzero."""

    def __init__(self, shape, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray):
        self.shape = tuple(int(d) for d in shape)
        self.indptr, self.indices, self.data = indptr, indices, data
        # Index arrays widened once at load, not on every slot: the stored ones are as small
        # as their values allow, which NumPy's gathers would convert each call.
        self._rows = indices.astype(np.intp)
        self._columns = np.repeat(np.arange(self.shape[1]), np.diff(indptr.astype(np.int64)))

    @classmethod
    def from_dense(cls, dense: np.ndarray) -> SparseMatrix:
        dense = np.asarray(dense, np.float32)
        columns_first = dense.T
        nonzero = columns_first != 0
        indptr = np.concatenate([[0], np.cumsum(nonzero.sum(axis=1))])
        rows = np.nonzero(nonzero)[1]
        return cls(
            dense.shape,
            indptr.astype(index_dtype(int(indptr[-1]))),
            rows.astype(index_dtype(max(dense.shape[0] - 1, 0))),
            columns_first[nonzero].astype(np.float32),
        )

    @property
    def nnz(self) -> int:
        return int(self.data.size)

    @property
    def nbytes(self) -> int:
        return self.indptr.nbytes + self.indices.nbytes + self.data.nbytes

    def to_dense(self) -> np.ndarray:
        dense = np.zeros(self.shape, np.float32)
        dense[self._rows, self._columns] = self.data
        return dense

    def rmatvec(self, x: np.ndarray) -> np.ndarray:
        """``x @ W`` for a vector ``x`` ``[in]`` -> ``[out]``."""
        products = x[self._rows] * self.data
        return np.bincount(self._columns, weights=products, minlength=self.shape[1]).astype(np.float32)


class DenseMatrix:
    """``W`` ``[in, out]`` stored dense, with ``SparseMatrix``'s interface: the baseline that
    ``dsa-jax bench actor`` times the sparse actor against."""

    def __init__(self, dense: np.ndarray):
        self.dense = np.ascontiguousarray(dense, np.float32)
        self.shape = self.dense.shape

    @property
    def nnz(self) -> int:
        return int(np.count_nonzero(self.dense))

    @property
    def nbytes(self) -> int:
        return self.dense.nbytes

    def to_dense(self) -> np.ndarray:
        return self.dense

    def rmatvec(self, x: np.ndarray) -> np.ndarray:
        return x @ self.dense


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * np.tanh(0.5 * x) + 0.5


class SparseActor:
    """One agent's deployed actor: two LSTM layers, ReLU, Dense; keeps its own hidden state."""

    def __init__(self, matrices: dict[str, SparseMatrix], biases: dict[str, np.ndarray]):
        self.matrices, self.biases = matrices, biases
        self.hidden_size = matrices["lstm1/recurrent_kernel"].shape[0]
        self.reset()

    @classmethod
    def load(cls, path, agent: int) -> SparseActor:
        with np.load(path) as archive:
            meta = json.loads(str(archive["meta"]))
            if not 0 <= agent < meta["num_agents"]:
                raise ValueError(f"agent = {agent} is invalid: {path} holds agents 0..{meta['num_agents'] - 1}")
            prefix = f"a{agent}/"
            matrices = {
                name: SparseMatrix(*(archive[f"{prefix}{name}/{part}"] for part in ("shape", "indptr", "indices", "data")))
                for name in MATRICES
            }
            biases = {name: archive[prefix + name].astype(np.float32) for name in BIASES}
        return cls(matrices, biases)

    def densified(self) -> SparseActor:
        """The same actor with dense weight matrices (zeros stored): same outputs, dense cost."""
        return SparseActor({name: DenseMatrix(m.to_dense()) for name, m in self.matrices.items()}, self.biases)

    def reset(self) -> None:
        """Zero hidden state, as at the start of an episode."""
        zeros = np.zeros(self.hidden_size, np.float32)
        self.state = [(zeros, zeros), (zeros, zeros)]

    def _lstm(self, layer: str, index: int, x: np.ndarray) -> np.ndarray:
        c, h = self.state[index]
        gates = (
            self.matrices[f"{layer}/input_kernel"].rmatvec(x)
            + self.matrices[f"{layer}/recurrent_kernel"].rmatvec(h)
            + self.biases[f"{layer}/bias"]
        )
        i, f, g, o = np.split(gates, 4)
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        h = _sigmoid(o) * np.tanh(c)
        self.state[index] = (c, h)
        return h

    def first_observation(self) -> np.ndarray:
        """The observation of an episode's first slot ``[obs_dim]``: all zeros."""
        return np.zeros(self.matrices["lstm1/input_kernel"].shape[0], np.float32)

    def step(self, obs: np.ndarray) -> np.ndarray:
        """One slot: observation ``[obs_dim]`` -> action probabilities ``[K+1]``. Advances the
        hidden state: a second call in the same slot would act as the next slot."""
        hidden = self._lstm("lstm2", 1, self._lstm("lstm1", 0, np.asarray(obs, np.float32)))
        logits = self.matrices["head/kernel"].rmatvec(np.maximum(hidden, 0.0)) + self.biases["head/bias"]
        exp = np.exp(logits - logits.max())
        return exp / exp.sum()

    def act(self, obs: np.ndarray) -> int:
        """Greedy action (0 = stay idle, k = transmit on channel k) for one slot; advances the
        hidden state like ``step``."""
        return int(np.argmax(self.step(obs)))

    def footprint(self) -> dict:
        """Dense and sparse bytes, and multiply-accumulates per slot (dense vs sparse)."""
        dense_weights = sum(m.shape[0] * m.shape[1] for m in self.matrices.values())
        bias_bytes = sum(b.nbytes for b in self.biases.values())
        return {
            "dense_bytes": 4 * dense_weights + bias_bytes,
            "sparse_bytes": sum(m.nbytes for m in self.matrices.values()) + bias_bytes,
            "dense_macs": dense_weights,
            "sparse_macs": sum(m.nnz for m in self.matrices.values()),
            "nonzero_weights": sum(m.nnz for m in self.matrices.values()),
            "weights": dense_weights,
        }

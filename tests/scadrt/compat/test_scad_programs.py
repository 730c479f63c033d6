"""Element programs written against Scad's own Python APIs (``disaggrt``, ``npjoin``, ``disagg``,
``action.profile``, ``withMerged``), the way the original repository's test programs use them,
run unchanged by the local engine over shm and tcp.

Each program's expected output comes from an independent computation in the test (plain numpy or
pandas on the same data, no transports), never from the program itself.
"""

from __future__ import annotations

import inspect
import io
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import scadrt
from scadrt.report import RunReport
from tests.programs import write

TRANSPORTS = ["shm", "tcp"]


def run(prog: Path, transport: str, params: Any = None) -> tuple[str, RunReport]:
    out, err = io.BytesIO(), io.BytesIO()
    report = scadrt.run(prog, params=params or {}, transport=transport, stdout=out, stderr=err)
    assert report.status == "ok", err.getvalue().decode()
    return out.getvalue().decode(), report


def header(*lines: str) -> str:
    return "".join(f"#@ {line}\n" for line in lines)


def corun(*names: str) -> list[str]:
    return ["corunning:", *(f"  {n}:\n#@     trans: {n}\n#@     type: rdma" for n in names)]


MEMORY = "type: memory\nlimits:\n  mem: 64 MB\n"

# ------------------------------------------------------------------ logistic regression, remote array

ROWS = 240  # 5 folds of 48; the original's diabetes data had 768 rows (no download here)


def dataset() -> np.ndarray:
    """A deterministic two-class data set: 8 features and a 0/1 label per row."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(ROWS, 8))
    label = (x @ np.linspace(-1, 1, 8) + rng.normal(scale=0.5, size=ROWS) > 0).astype(float)
    return np.column_stack([x, label])


def lr_reference(data: np.ndarray) -> str:
    """The monolithic program the split one below comes from: normalise, 5 folds, SGD, accuracy."""
    data = data.copy()
    lo, hi = data.min(axis=0), data.max(axis=0)
    data = (data - lo) / (hi - lo)
    random.seed(1)
    rows, folds = list(data), []
    for _ in range(5):
        fold = []
        while len(fold) < len(data) // 5:
            fold.append(rows.pop(random.randrange(len(rows))))
        folds.append(fold)
    return lr_scores(np.asarray(folds)) + "\n"


def lr_scores(folds: np.ndarray) -> str:
    scores = []
    for i in range(len(folds)):
        train = np.concatenate([f for j, f in enumerate(folds) if j != i])
        coef = np.zeros(train.shape[1])
        for _ in range(20):
            for row in train:
                yhat = 1.0 / (1.0 + np.exp(-(coef[0] + row[:-1] @ coef[1:])))
                err = row[-1] - yhat
                coef[0] += 0.1 * err * yhat * (1 - yhat)
                coef[1:] += 0.1 * err * yhat * (1 - yhat) * row[:-1]
        test = folds[i]
        pred = np.round(1.0 / (1.0 + np.exp(-(coef[0] + test[:, :-1] @ coef[1:]))))
        scores.append(float((pred == test[:, -1]).mean() * 100))
    return f"Scores: {scores} Mean: {sum(scores) / len(scores):.3f}%"


def lr_program(root: Path, data: np.ndarray) -> Path:
    """Scad's logistic_regression split: func1 stores the data set, func2 normalises it and stores
    the folds, func3 trains and scores; metadata travels pickled and base64-encoded, as there."""
    scores_src = inspect.getsource(lr_scores)
    np.save(root.parent / "data.npy", data)
    return write(root, {
        "mem1.o.yaml": MEMORY,
        "func1.o.py": header("type: compute", "dependents:", "  - func2", *corun("mem1")) + f'''
import base64, pickle
import numpy as np
import disaggrt.buffer_pool_lib as buffer_pool_lib
from disaggrt.rdma_array import remote_array

def main(params, action):
    trans = action.get_transport('mem1', 'rdma')
    trans.reg(buffer_pool_lib.buffer_size)
    dataset = np.load({str(root.parent / "data.npy")!r})
    buffer_pool = buffer_pool_lib.buffer_pool({{'mem1': trans}})
    remote_input = remote_array(buffer_pool, input_ndarray=dataset, transport_name='mem1')
    context = {{'remote_input': remote_input.get_array_metadata(),
               'buffer_pool_metadata': buffer_pool.get_buffer_metadata()}}
    return {{'meta': base64.b64encode(pickle.dumps(context)).decode('ascii')}}
''',
        "func2.o.py": header("type: compute", "parents:", "  - func1", "dependents:", "  - func3",
                             *corun("mem1")) + '''
import base64, pickle, random
from random import randrange
import numpy as np
import disaggrt.buffer_pool_lib as buffer_pool_lib
from disaggrt.rdma_array import remote_array

def main(params, action):
    trans = action.get_transport('mem1', 'rdma')
    trans.reg(buffer_pool_lib.buffer_size)
    context = pickle.loads(base64.b64decode(params['func1'][0]['meta']))
    buffer_pool = buffer_pool_lib.buffer_pool({'mem1': trans}, context['buffer_pool_metadata'])
    dataset = remote_array(buffer_pool, metadata=context['remote_input']).materialize()
    for i in range(len(dataset[0])):          # normalised in place, as the original did
        lo, hi = min(dataset[:, i]), max(dataset[:, i])
        for row in dataset:
            row[i] = (row[i] - lo) / (hi - lo)
    random.seed(1)
    rows, folds = list(dataset), []
    for _ in range(5):
        fold = []
        while len(fold) < int(len(dataset) / 5):
            fold.append(rows.pop(randrange(len(rows))))
        folds.append(fold)
    remote_cv = remote_array(buffer_pool, input_ndarray=np.asarray(folds), transport_name='mem1')
    context['remote_cv_split'] = remote_cv.get_array_metadata()
    context['buffer_pool_metadata'] = buffer_pool.get_buffer_metadata()
    return {'meta': base64.b64encode(pickle.dumps(context)).decode('ascii')}
''',
        "func3.o.py": header("type: compute", "parents:", "  - func2", *corun("mem1")) + '''
import base64, pickle
import numpy as np
import disaggrt.buffer_pool_lib as buffer_pool_lib
from disaggrt.rdma_array import remote_array

''' + scores_src + '''
def main(params, action):
    trans = action.get_transport('mem1', 'rdma')
    trans.reg(buffer_pool_lib.buffer_size)
    context = pickle.loads(base64.b64decode(params['func2'][0]['meta']))
    buffer_pool = buffer_pool_lib.buffer_pool({'mem1': trans}, context['buffer_pool_metadata'])
    folds = remote_array(buffer_pool, metadata=context['remote_cv_split']).materialize()
    print(lr_scores(folds))
    return {'folds': list(folds.shape)}
''',
    })


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_logistic_regression_over_a_remote_array_prints_what_the_monolith_prints(tmp_path: Path,
                                                                                transport: str) -> None:
    data = dataset()
    out, report = run(lr_program(tmp_path / "lr", data), transport)
    assert out == lr_reference(data)
    moved = {kind: t for i in report.instances for kind, t in i.transfer.items()}
    assert set(moved) == {transport}  # the data went through the memory element, not params


# ------------------------------------------------------------- several memory elements, one buffer

def test_arrays_on_three_memory_elements_sharing_one_buffer_read_back_as_one(tmp_path: Path) -> None:
    # Scad's multi_transport / custome_type_unit_test: three slices of a structured array on
    # mem1..mem3 through one staging buffer (reg(size, other)), merged metadata, a slice of it
    record = "np.dtype([('key', '<f4'), ('name', 'S6'), ('n', '<i8')])"
    prog = write(tmp_path / "multi", {
        **{f"mem{i}.o.yaml": MEMORY for i in (1, 2, 3)},
        "step1.o.py": header("type: compute", "dependents:", "  - step2", *corun("mem1", "mem2", "mem3")) + f'''
import base64, pickle
import numpy as np
import disaggrt.buffer_pool_lib as buffer_pool_lib
from disaggrt.rdma_array import remote_array

def main(params, action):
    t1 = action.get_transport('mem1', 'rdma')
    t1.reg(buffer_pool_lib.buffer_size)
    t2 = action.get_transport('mem2', 'rdma')
    t2.reg(buffer_pool_lib.buffer_size, t1)
    t3 = action.get_transport('mem3', 'rdma')
    t3.reg(buffer_pool_lib.buffer_size, t1)
    pool = buffer_pool_lib.buffer_pool({{'mem1': t1, 'mem2': t2, 'mem3': t3}})
    dt = {record}
    context = {{}}
    for i, name in enumerate(['mem1', 'mem2', 'mem3']):
        part = np.array([(10 * i + k, b'r%d' % (10 * i + k), (10 * i + k) ** 2) for k in range(10)], dtype=dt)
        context['slice_%d' % (i + 1)] = remote_array(pool, input_ndarray=part, transport_name=name).get_array_metadata()
    context['bp'] = pool.get_buffer_metadata()
    return {{'meta': base64.b64encode(pickle.dumps(context)).decode('ascii')}}
''',
        "step2.o.py": header("type: compute", "parents:", "  - step1", *corun("mem1", "mem2", "mem3")) + '''
import base64, pickle
import disaggrt.buffer_pool_lib as buffer_pool_lib
from disaggrt.rdma_array import remote_array, merge_arrays_metadata

def main(params, action):
    context = pickle.loads(base64.b64decode(params['step1']['meta']))  # most of Scad's programs: no [0]
    t1 = action.get_transport('mem1', 'rdma')
    t1.reg(buffer_pool_lib.buffer_size)
    t2 = action.get_transport('mem2', 'rdma')
    t2.reg(buffer_pool_lib.buffer_size, t1)
    t3 = action.get_transport('mem3', 'rdma')
    t3.reg(buffer_pool_lib.buffer_size, t1)
    pool = buffer_pool_lib.buffer_pool({'mem1': t1, 'mem2': t2, 'mem3': t3}, context['bp'])
    merged = merge_arrays_metadata([context['slice_1'], context['slice_2'], context['slice_3']])
    part = remote_array(pool, metadata=merged).get_slice(5, 25).materialize()
    print(part['key'].tolist(), part['name'][0], part['n'][-1])
    return {}
''',
    })
    keys = [float(k) for k in range(5, 25)]
    for transport in TRANSPORTS:
        out, _ = run(prog, transport)
        assert out == f"{keys} b'r5' {24 ** 2}\n"


# ----------------------------------------------------- parallel instances on one memory element

def test_parallel_instances_write_their_part_of_one_memory_element(tmp_path: Path) -> None:
    # Scad's parallelism-2-node / tpcds_1_par pattern: getParIndex, remoteWrite in 2 MiB requests,
    # a final element reading every part back with ArrayLoader
    block = 3 * 1024 * 1024 // 8  # 3 MiB of float64 per instance: more than one request
    prog = write(tmp_path / "par", {
        "mem1.o.yaml": MEMORY,
        "writer.o.py": header("type: compute", "parallelism: 4", "dependents:", "  - reader", *corun("mem1")) + f'''
import numpy as np
from disaggrt.util import getParIndex, remoteWrite

def main(params, action):
    i = getParIndex()
    assert i == action.par_index
    t = action.get_transport('mem1', 'rdma')
    t.reg({block} * 8)
    np.asarray(t.buf).view(np.float64)[:] = np.arange({block}) + i * {block}
    remoteWrite(t, 0, i * {block} * 8, {block} * 8)
    return {{'groups': [[j * {block} for j in range(5)]]}}
''',
        "reader.o.py": header("type: compute", "parents:", "  - writer", *corun("mem1")) + f'''
import numpy as np
from disaggrt.util import ArrayLoader, getGroups

def main(params, action):
    t = action.get_transport('mem1', 'rdma')
    t.reg(4 * {block} * 8)
    total = 0.0
    for i in range(4):
        groups, offsets, trans = getGroups(params['writer'][i:i + 1], [t], i)
        got = ArrayLoader(trans, np.dtype(np.float64), groups, offsets).getAll()
        total += float(got.sum())
    loader = ArrayLoader([t, t], np.dtype(np.float64), [10, 10], [0, 2 * {block}])
    first, rest = loader.getNext(15), loader.getNext(100)
    print(int(total), first[-1], len(rest), rest[-1])
    return {{}}
''',
    })
    n = 4 * block
    for transport in TRANSPORTS:
        out, _ = run(prog, transport)
        assert out == f"{n * (n - 1) // 2} {float(2 * block + 4)} 5 {float(2 * block + 9)}\n"


# ------------------------------------------------------------------ a TPC-DS-like query with npjoin

TABLES = '''
import numpy as np

def date_dim():
    rng = np.random.default_rng(11)
    sk = np.arange(2000, dtype=np.float32)
    return np.rec.fromarrays([sk, rng.integers(1998, 2003, 2000).astype(np.float32)],
                             names=['d_date_sk', 'd_year']).view(np.ndarray)

def store_returns():
    rng = np.random.default_rng(12)
    n = 20000
    date = rng.integers(0, 2000, n).astype(np.float32)
    date[::97] = np.nan                                  # returns without a date match nothing
    return np.rec.fromarrays([date, rng.integers(0, 300, n).astype(np.float32),
                              rng.integers(0, 6, n).astype(np.float32), rng.integers(1, 500, n).astype(np.float32)],
                             names=['sr_returned_date_sk', 'sr_customer_sk', 'sr_store_sk',
                                    'sr_return_amt']).view(np.ndarray)
'''

STORE = '''
import base64, pickle
import disaggrt.buffer_pool_lib as buffer_pool_lib
from disaggrt.rdma_array import remote_array

def store(action, name, df):
    trans = action.get_transport(name, 'rdma')
    trans.reg(buffer_pool_lib.buffer_size)
    bp = buffer_pool_lib.buffer_pool({name: trans})
    arr = remote_array(bp, input_ndarray=df, transport_name=name)
    return {'meta': base64.b64encode(pickle.dumps({'df': arr.get_array_metadata(),
                                                   'bp': bp.get_buffer_metadata()})).decode('ascii')}

def load(action, name, result):
    trans = action.get_transport(name, 'rdma')
    trans.reg(buffer_pool_lib.buffer_size)
    context = pickle.loads(base64.b64decode(result['meta']))
    bp = buffer_pool_lib.buffer_pool({name: trans}, context['bp'])
    return remote_array(bp, metadata=context['df']).materialize()
'''


def tpcds_program(root: Path) -> Path:
    """Scad's tpcds_1 split (steps 1-4 of 8): each step's table in its own memory element, the join
    built straight into the output array's buffer with npjoin, as step3.o.py does."""
    return write(root, {
        "tables.py": TABLES,
        "store.py": STORE,
        **{f"{i}_out_mem.o.yaml": MEMORY for i in (1, 2, 3)},
        "step1.o.py": header("type: compute", "dependents:", "  - step3", *corun("1_out_mem")) + '''
from tables import date_dim
from store import store

def main(params, action):
    df = date_dim()
    return store(action, '1_out_mem', df[df['d_year'] == 2000][['d_date_sk']].copy())
''',
        "step2.o.py": header("type: compute", "dependents:", "  - step3", *corun("2_out_mem")) + '''
from tables import store_returns
from store import store

def main(params, action):
    return store(action, '2_out_mem', store_returns())
''',
        "step3.o.py": header("type: compute", "parents:", "  - step1", "  - step2", "dependents:", "  - step4",
                             *corun("1_out_mem", "2_out_mem", "3_out_mem")) + '''
import base64, pickle
import disaggrt.buffer_pool_lib as buffer_pool_lib
from disaggrt.rdma_array import *
from npjoin import join
from store import load

def main(params, action):
    df1 = load(action, '1_out_mem', params['step1'][0])
    df2 = load(action, '2_out_mem', params['step2'][0])
    trans = action.get_transport('3_out_mem', 'rdma')
    trans.reg(buffer_pool_lib.buffer_size)
    join_meta = join.prepare_join_float32(df1['d_date_sk'])
    df1_idx, df2_idx = join.join_on_table_float32(*join_meta, df2['sr_returned_date_sk'])
    bp = buffer_pool_lib.buffer_pool({'3_out_mem': trans})
    left = [n for n in df1.dtype.names if n != 'd_date_sk']
    right = [n for n in df2.dtype.names if n != 'sr_returned_date_sk']
    merged_dtype = join.merge_dtypes(df1, df2, left, right)
    out = init_empty_remote_array(bp, '3_out_mem', merged_dtype, (len(df1_idx),))
    buf = out.request_mem_on_buffer_for_array(0, len(df1_idx))
    join.structured_array_merge(buf, df1, df2, df1_idx, df2_idx, left, right)
    out.flush_slice(0, len(df1_idx))
    context = {'df': out.get_array_metadata(), 'bp': bp.get_buffer_metadata()}
    return {'meta': base64.b64encode(pickle.dumps(context)).decode('ascii')}
''',
        "step4.o.py": header("type: compute", "parents:", "  - step3", *corun("3_out_mem")) + '''
import numpy as np
from store import load

def main(params, action):
    df = load(action, '3_out_mem', params['step3'][0])
    keys = np.stack([df['sr_customer_sk'], df['sr_store_sk']], axis=1)
    groups, inverse = np.unique(keys, axis=0, return_inverse=True)
    total = np.bincount(inverse.reshape(-1), weights=df['sr_return_amt'])
    stores, at = np.unique(groups[:, 1], return_inverse=True)
    avg = np.bincount(at, weights=total) / np.bincount(at)
    picked = np.unique(groups[total > avg[at], 0])
    print(len(df), len(picked), picked[:8].astype(int).tolist(), int(total.sum()))
    return {}
''',
    })


def tpcds_reference() -> str:
    """The same query in pandas (the original's reference.py did it this way)."""
    import pandas as pd

    space: dict[str, Any] = {}
    exec(TABLES, space)
    dates = pd.DataFrame(space["date_dim"]())
    returns = pd.DataFrame(space["store_returns"]()).dropna(subset=["sr_returned_date_sk"])  # SQL: NaN ≠ NaN
    joined = dates[dates.d_year == 2000][["d_date_sk"]].merge(returns, left_on="d_date_sk",
                                                               right_on="sr_returned_date_sk")
    ctr = joined.groupby(["sr_customer_sk", "sr_store_sk"], as_index=False)["sr_return_amt"].sum()
    ctr["avg"] = ctr.groupby("sr_store_sk")["sr_return_amt"].transform("mean")
    picked = sorted(ctr[ctr.sr_return_amt > ctr["avg"]].sr_customer_sk.unique())
    return f"{len(joined)} {len(picked)} {[int(c) for c in picked[:8]]} {int(ctr.sr_return_amt.sum())}\n"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_tpcds_like_query_joined_with_npjoin_matches_pandas(tmp_path: Path, transport: str) -> None:
    out, report = run(tpcds_program(tmp_path / "q1"), transport)
    assert out == tpcds_reference()
    assert {m.element for m in report.memory} == {"1_out_mem", "2_out_mem", "3_out_mem"}

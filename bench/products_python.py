"""The Python side of bench/products.sh: the same computations as the extension's, with the
libraries people use for them, timed on the same data exported by the benchmark.

    python products_python.py pairs PAIRS.csv MAX_ITEMS LAMBDA NEIGHBOURS
        PAIRS.csv: user_id,product_id,orders (the customers x products matrix of the order lines,
        as train_recommender reads it). Times, each the best of the runs given by RUNS (default 1):
        building the sparse matrix; implicit's CosineRecommender and BM25Recommender (K
        neighbours, K1 = 1.2, B = 0.75) fitted on it; EASE in numpy on the MAX_ITEMS products with
        the most buyers (G = X'X + lambda I, P = inv(G), B = -P / diag(P)).
    python products_python.py cohorts ORDERS.csv
        ORDERS.csv: user_id,created_at (date),total_amount of the counted orders. Times monthly
        first-purchase cohort retention in pandas: size, active customers, orders and revenue per
        cohort and month number, as cohort_retention('month') computes them.

Prints one line per step: `name seconds [detail]`.
"""

import os
import sys
import time

import numpy as np


def best(f, runs):
    out, t = None, float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        out = f()
        t = min(t, time.perf_counter() - start)
    return out, t


def pairs(path, max_items, lam, k, runs):
    import implicit
    import pandas as pd
    import scipy.sparse as sp
    from implicit.nearest_neighbours import BM25Recommender, CosineRecommender

    start = time.perf_counter()
    df = pd.read_csv(path)
    print(f"read_csv {time.perf_counter() - start:.3f} {len(df)} pairs")

    def matrix():
        users, u = np.unique(df.user_id.to_numpy(), return_inverse=True)
        items, i = np.unique(df.product_id.to_numpy(), return_inverse=True)
        counts = df.orders.to_numpy().astype(np.float32)
        return sp.csr_matrix((counts, (u, i)), shape=(len(users), len(items))).tocsr()

    x, t = best(matrix, runs)
    print(f"matrix {t:.3f} {x.shape[0]} customers x {x.shape[1]} products")
    binary = x.copy().tocsr()
    binary.data[:] = 1.0

    def cosine():
        m = CosineRecommender(K=k)
        m.fit(binary, show_progress=False)
        return m

    def bm25():
        m = BM25Recommender(K=k, K1=1.2, B=0.75)
        m.fit(x, show_progress=False)
        return m

    _, t = best(cosine, runs)
    print(f"implicit_cosine {t:.3f} implicit {implicit.__version__}")
    _, t = best(bm25, runs)
    print(f"implicit_bm25 {t:.3f}")

    def ease():
        buyers = np.asarray(binary.sum(axis=0)).ravel()
        keep = np.argsort(-buyers, kind="stable")[:max_items]
        xs = binary[:, keep]
        g = (xs.T @ xs).toarray().astype(np.float64)
        g[np.diag_indices_from(g)] += lam
        p = np.linalg.inv(g)
        b = -p / np.diag(p)
        b[np.diag_indices_from(b)] = 0.0
        return b

    b, t = best(ease, runs)
    print(f"numpy_ease {t:.3f} {b.shape[0]} products (numpy {np.__version__})")


def cohorts(path, runs):
    import pandas as pd

    start = time.perf_counter()
    df = pd.read_csv(path, parse_dates=["created_at"])
    print(f"read_csv {time.perf_counter() - start:.3f} {len(df)} orders")

    def compute():
        month = df.created_at.dt.year * 12 + df.created_at.dt.month - 1
        first = month.groupby(df.user_id).transform("min")
        d = pd.DataFrame(
            {"cohort": first, "n": month - first, "user_id": df.user_id, "amount": df.total_amount}
        )
        size = d.groupby("cohort").user_id.nunique()
        cells = d.groupby(["cohort", "n"]).agg(
            active=("user_id", "nunique"), orders=("user_id", "size"), revenue=("amount", "sum")
        )
        cells = cells.join(size.rename("size"), on="cohort")
        cells["retention"] = cells.active / cells["size"]
        cells["revenue_per_customer"] = cells.revenue / cells["size"]
        cells["cumulative_revenue_per_customer"] = cells.groupby(level=0).revenue_per_customer.cumsum()
        return cells

    cells, t = best(compute, runs)
    print(f"pandas_cohorts {t:.3f} {len(cells)} cells (pandas {pd.__version__})")


if __name__ == "__main__":
    runs = int(os.environ.get("RUNS", "1"))
    if sys.argv[1] == "pairs":
        pairs(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), runs)
    elif sys.argv[1] == "cohorts":
        cohorts(sys.argv[2], runs)
    else:
        sys.exit(__doc__)

"""A customer base drawn from the models themselves, for the CLV benchmark at scale: N customers
whose first purchases spread over 2023, followed to 2025-06-30, with purchase rates, dropout and
spend drawn from BG/NBD and Gamma-Gamma at the CDNOW estimates (r = 0.243, alpha = 4.414 weeks,
a = 0.793, b = 2.426; p = 6.25, q = 3.74, v = 15.44). Purchases are continuous-time events (the
order's timestamp keeps the time of day); a customer may drop out after each repeat purchase;
5% of the orders are cancelled (not successful, and not read). Writes users.csv and orders.csv.

usage: python generate_clv.py N SEED OUT_DIR
"""
import sys

import numpy as np
import pandas as pd

n, seed, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rng = np.random.default_rng(seed)
start = pd.Timestamp("2023-01-01", tz="UTC")
end_days = (pd.Timestamp("2025-06-30 23:59:59", tz="UTC") - start) / pd.Timedelta(days=1)

r, alpha_days, a, b = 0.243, 4.414 * 7, 0.793, 2.426
p_shape, q_shape, v_rate = 6.25, 3.74, 15.44

first = rng.uniform(0, 365, n)
lam = rng.gamma(r, 1 / alpha_days, n)
drop = rng.beta(a, b, n)
nu = rng.gamma(q_shape, 1 / v_rate, n)

users, times = [np.arange(1, n + 1)], [first]
t = first.copy()
active = np.arange(n)
while active.size:
    t[active] += rng.exponential(1 / lam[active])
    active = active[t[active] <= end_days]
    users.append(active + 1)
    times.append(t[active].copy())
    active = active[rng.uniform(size=active.size) >= drop[active]]

user_id = np.concatenate(users)
day = np.concatenate(times)
amount = np.maximum(np.round(rng.gamma(p_shape, 1 / nu[user_id - 1]), 2), 0.01)
status = rng.choice(["paid", "shipped", "completed", "cancelled"], size=user_id.size, p=[0.3, 0.3, 0.35, 0.05])
created = start + pd.to_timedelta(day, unit="D")
pd.DataFrame({"user_id": np.arange(1, n + 1), "registered_at": (start + pd.to_timedelta(first, unit="D")).strftime("%Y-%m-%d %H:%M:%S+00")}).to_csv(
    f"{out}/users.csv", index=False, header=False)
pd.DataFrame({"order_id": np.arange(1, user_id.size + 1), "user_id": user_id,
              "created_at": created.strftime("%Y-%m-%d %H:%M:%S+00"), "status": status,
              "total_amount": amount}).to_csv(f"{out}/orders.csv", index=False, header=False)
print(f"{n} customers, {user_id.size} orders")

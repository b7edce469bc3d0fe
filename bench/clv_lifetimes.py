"""The lifetimes side of the CLV benchmark: fits BG/NBD, MBG/NBD, Pareto/NBD and Gamma-Gamma on
a customer summary exported by clv_summary() (user_id, frequency, recency, t, monetary_value;
weeks), times each fit (best of N) and the scoring of every customer, and prints one line per
measurement: `fit MODEL SECONDS p1 p2 ...` and `score SECONDS`.

usage: python clv_lifetimes.py SUMMARY.csv RUNS [--skip MODEL ...]
"""
import sys
import time

import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter, ModifiedBetaGeoFitter, ParetoNBDFitter

path, runs = sys.argv[1], int(sys.argv[2])
skip = set(sys.argv[4:]) if len(sys.argv) > 3 and sys.argv[3] == "--skip" else set()
d = pd.read_csv(path)
repeat = d[(d.frequency > 0) & (d.monetary_value > 0)]


def best(fit):
    times, model = [], None
    for _ in range(runs):
        start = time.perf_counter()
        model = fit()
        times.append(time.perf_counter() - start)
    return min(times), model


fitted = {}


def fit_purchases(name, cls, order):
    if name in skip:
        print(f"fit {name} skipped", flush=True)
        return
    seconds, model = best(lambda: cls().fit(d["frequency"], d["recency"], d["t"]))
    fitted[name] = model
    print(f"fit {name} {seconds:.6f} " + " ".join(f"{model.params_[k]:.6g}" for k in order), flush=True)


# Pareto/NBD last: at 1M customers it may not finish within the benchmark's limit.
fit_purchases("bgnbd", BetaGeoFitter, ["r", "alpha", "a", "b"])
fit_purchases("mbgnbd", ModifiedBetaGeoFitter, ["r", "alpha", "a", "b"])

seconds, gg = best(lambda: GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"]))
print(f"fit gamma_gamma {seconds:.6f} " + " ".join(f"{gg.params_[k]:.6g}" for k in ["p", "q", "v"]), flush=True)

# Scoring every customer as calculate_all_clv does: probability alive, expected purchases over
# 12 months, expected spend, and the 12-month CLV at 1% a month (freq='W': the data are weeks).
bgf = fitted.get("bgnbd") or BetaGeoFitter().fit(d["frequency"], d["recency"], d["t"])
money = d["monetary_value"].fillna(0)


def score():
    alive = bgf.conditional_probability_alive(d["frequency"], d["recency"], d["t"])
    purchases = bgf.conditional_expected_number_of_purchases_up_to_time(52.18, d["frequency"], d["recency"], d["t"])
    spend = gg.conditional_expected_average_profit(d["frequency"], money)
    clv = gg.customer_lifetime_value(bgf, d["frequency"], d["recency"], d["t"], money,
                                     time=12, discount_rate=0.01, freq="W")
    return alive, purchases, spend, clv


seconds, _ = best(score)
print(f"score {seconds:.6f}", flush=True)
fit_purchases("pareto_nbd", ParetoNBDFitter, ["r", "alpha", "s", "beta"])

"""Independent re-implementation of NannyML 0.13.1 CBPE (binary + multiclass) WITHOUT nannyml/sklearn/scipy,
used to validate docs/research/nannyml-cbpe-0.13.1.md (issue 17's research notes). Only numpy + pandas(csv reading) are used."""
import math, sys
import numpy as np, pandas as pd

SORT_KIND = 'stable'   # tie handling for argsort in ECE / AUROC-SE / estimate_roc_auc

# ---------------- MT19937 (numpy legacy RandomState) ----------------
class MT19937:
    def __init__(self, seed):
        self.mt = [0]*624
        self.mt[0] = seed & 0xffffffff
        for i in range(1, 624):
            self.mt[i] = (1812433253 * (self.mt[i-1] ^ (self.mt[i-1] >> 30)) + i) & 0xffffffff
        self.idx = 624
    def _twist(self):
        mt = self.mt
        for i in range(624):
            y = (mt[i] & 0x80000000) | (mt[(i+1) % 624] & 0x7fffffff)
            v = mt[(i+397) % 624] ^ (y >> 1)
            if y & 1: v ^= 0x9908b0df
            mt[i] = v
        self.idx = 0
    def next_u32(self):
        if self.idx >= 624: self._twist()
        y = self.mt[self.idx]; self.idx += 1
        y ^= (y >> 11); y ^= (y << 7) & 0x9d2c5680; y ^= (y << 15) & 0xefc60000; y ^= (y >> 18)
        return y & 0xffffffff
    def next_u64(self):
        return (self.next_u32() << 32) | self.next_u32()
    def random_interval(self, mx):
        if mx == 0: return 0
        mask = mx
        for s in (1, 2, 4, 8, 16, 32): mask |= mask >> s
        if mx <= 0xffffffff:
            while True:
                v = self.next_u32() & mask
                if v <= mx: return v
        while True:
            v = self.next_u64() & mask
            if v <= mx: return v
    def shuffle(self, arr):
        arr = list(arr)
        for i in range(len(arr)-1, 0, -1):
            j = self.random_interval(i)
            arr[i], arr[j] = arr[j], arr[i]
        return arr
    def permutation(self, x):
        return self.shuffle(range(x) if isinstance(x, int) else x)
    def choice_without_replacement(self, population, size):
        perm = self.permutation(len(population))[:size]
        return [population[k] for k in perm]

def approximate_mode(class_counts, n_draws, rng):
    class_counts = np.asarray(class_counts)
    continuous = class_counts / class_counts.sum() * n_draws
    floored = np.floor(continuous)
    need = int(n_draws - floored.sum())
    if need > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            inds = list(np.where(remainder == value)[0])
            add_now = min(len(inds), need)
            chosen = rng.choice_without_replacement(inds, add_now)
            floored[chosen] += 1
            need -= add_now
            if need == 0: break
    return floored.astype(int)

def stratified_shuffle_split(y, n_splits=10, test_size=0.1, seed=42):
    y = np.asarray(y); n = len(y)
    n_test = math.ceil(test_size * n); n_train = n - n_test
    classes, y_idx, counts = np.unique(y, return_inverse=True, return_counts=True)
    order = np.argsort(y_idx, kind='stable')
    class_indices = np.split(order, np.cumsum(counts)[:-1])
    rng = MT19937(seed)
    for _ in range(n_splits):
        n_i = approximate_mode(counts, n_train, rng)
        t_i = approximate_mode(counts - n_i, n_test, rng)
        train, test = [], []
        for i in range(len(classes)):
            perm = rng.permutation(int(counts[i]))
            p = class_indices[i][perm]
            train.extend(p[:n_i[i]]); test.extend(p[n_i[i]:n_i[i]+t_i[i]])
        yield np.array(rng.permutation(train)), np.array(rng.permutation(test))

# ---------------- isotonic regression (sklearn IsotonicRegression(out_of_bounds='clip', increasing=True)) --------
class Isotonic:
    def fit(self, x, y):
        x = np.asarray(x, float); y = np.asarray(y, float)
        o = np.lexsort((y, x)); x = x[o]; y = y[o]
        ux, uy, uw = [], [], []
        cx = x[0]; sy = 0.0; sw = 0.0
        eps = np.finfo(float).resolution
        for xi, yi in zip(x, y):
            if xi - cx >= eps:
                ux.append(cx); uy.append(sy/sw); uw.append(sw); cx = xi; sy = yi; sw = 1.0
            else:
                sy += yi; sw += 1.0
        ux.append(cx); uy.append(sy/sw); uw.append(sw)
        # PAVA
        blocks = []  # [value, weight, count]
        for v, w in zip(uy, uw):
            blocks.append([v, w, 1])
            while len(blocks) > 1 and blocks[-2][0] >= blocks[-1][0]:
                v2, w2, c2 = blocks.pop(); v1, w1, c1 = blocks.pop()
                blocks.append([(v1*w1 + v2*w2)/(w1+w2), w1+w2, c1+c2])
        fy = np.concatenate([[v]*c for v, w, c in blocks])
        self.x = np.array(ux); self.y = fy
        return self
    def predict(self, t):
        t = np.clip(np.asarray(t, float), self.x[0], self.x[-1])
        if len(self.x) == 1: return np.full_like(t, self.y[0])
        return np.interp(t, self.x, self.y)

class Noop:
    def fit(self, x, y): return self
    def predict(self, t): return np.asarray(t, float)

# ---------------- helpers ----------------
def auc_tie_aware(y, s):
    y = np.asarray(y); s = np.asarray(s, float)
    ranks = pd.Series(s).rank(method='average').to_numpy()
    npos = y.sum(); nneg = len(y) - npos
    return (ranks[y == 1].sum() - npos*(npos+1)/2) / (npos*nneg)

def bin_edges(n, bin_count=10):
    if n <= 2*bin_count:
        bin_count = n // 2
    w = n // bin_count
    e = list(range(0, n+1, w)); e[-1] = n
    return list(zip(e[:-1], e[1:]))

def ece(y, p, edges):
    o = np.argsort(p, kind=SORT_KIND); p = p[o]; y = y[o]
    return sum((r-l)/len(p) * abs(p[l:r].mean() - y[l:r].mean()) for l, r in edges)

def needs_calibration(y, p):
    y = np.asarray(y); p = np.asarray(p, float)
    if len(np.unique(y)) == 1: return False, None
    if auc_tie_aware(y, p) > 0.999: return False, None
    ys, ps, cs = [], [], []
    for tr, te in stratified_shuffle_split(y):
        c = Isotonic().fit(p[tr], y[tr]); ys.append(y[te]); ps.append(p[te]); cs.append(c.predict(p[te]))
    ys = np.concatenate(ys); ps = np.concatenate(ps); cs = np.concatenate(cs)
    e = bin_edges(len(ps))
    b, a = ece(ys, ps, e), ece(ys, cs, e)
    return b > a, (b, a)

def estimate_roc_auc(cal, unc):
    o = np.argsort(unc, kind=SORT_KIND)[::-1]
    c = np.asarray(cal)[o]
    tps = np.cumsum(c); fps = 1 + np.arange(len(c)) - tps
    tps = np.round(np.r_[0, tps], 5); fps = np.round(np.r_[0, fps], 5)
    tpr = tps/tps[-1]; fpr = fps/fps[-1]
    return np.trapezoid(tpr, fpr)

def est_f1(yp, p):
    TP = p[yp == 1].sum(); FP = (1-p[yp == 1]).sum(); FN = p[yp == 0].sum()
    d = TP + 0.5*(FP+FN); return TP/d if d != 0 else 0
def est_precision(yp, p):
    TP = p[yp == 1].sum(); FP = (1-p[yp == 1]).sum(); d = TP+FP; return TP/d if d != 0 else 0
def est_recall(yp, p):
    TP = p[yp == 1].sum(); FN = p[yp == 0].sum(); d = TP+FN; return TP/d if d != 0 else 0
def est_specificity(yp, p):
    TN = (1-p[yp == 0]).sum(); FP = (1-p[yp == 1]).sum(); d = TN+FP; return TN/d if d != 0 else 0
def est_accuracy(yp, p):
    return (p[yp == 1].sum() + (1-p[yp == 0]).sum())/len(yp)
EST = dict(f1=est_f1, precision=est_precision, recall=est_recall, specificity=est_specificity, accuracy=est_accuracy)

def auroc_se_component(y, p, use_var):
    y = np.asarray(y).astype(float); p = np.asarray(p, float)
    if y.mean() > 0.5: y = np.abs(y-1); p = 1-p
    o = np.argsort(p, kind=SORT_KIND); y = y[o]
    pos_ranks = y*np.arange(len(y))
    idx = np.unique(pos_ranks)[1:]
    ser = idx - np.arange(len(idx))
    npos = y.sum(); nneg = len(y)-npos
    s = ser/nneg
    return (np.var(s) if use_var else np.std(s)), npos/len(y)

def counts(yt, yp):
    TP = np.sum((yt == 1) & (yp == 1)); FP = np.sum((yt != 1) & (yp == 1))
    FN = np.sum((yt != yp) & (yp == 0)); TN = np.sum((yt == yp) & (yp == 0))
    return TP, FP, FN, TN
def indicator_stat(ones, zeros, fn):  # std/var of a vector of `ones` 1s and `zeros` 0s (ddof=0)
    n = ones+zeros; m = ones/n; v = m*(1-m)
    return math.sqrt(v) if fn == 'std' else v

def binary_se_components(metric, yt, yp):
    TP, FP, FN, TN = counts(yt, yp); n = len(yt)
    if metric == 'f1':
        L = TP+FN+FP; cf = L/((FN+FP)*0.5+TP)
        return indicator_stat(TP, FN+FP, 'std')*cf, L/n
    if metric == 'precision': return indicator_stat(TP, FP, 'std'), yp.sum()/n
    if metric == 'recall': return indicator_stat(TP, FN, 'std'), yt.sum()/n
    if metric == 'specificity': return indicator_stat(TN, FP, 'std'), (TN+FP)/n
    if metric == 'accuracy': return indicator_stat(TP+TN, FP+FN, 'std'), None

def realized_binary(metric, yt, yp, p_unc):
    if metric == 'roc_auc':
        return auc_tie_aware(yt, p_unc) if len(np.unique(yt)) > 1 else np.nan
    TP, FP, FN, TN = counts(yt, yp)
    if metric == 'accuracy': return (TP+TN)/len(yt)
    if metric == 'specificity': return TN/(TN+FP) if TN+FP else np.nan
    if len(np.unique(yt)) <= 1 or len(np.unique(yp)) <= 1: return np.nan
    if metric == 'f1': return 2*TP/(2*TP+FP+FN) if TP+FP+FN else 0.0
    if metric == 'precision': return TP/(TP+FP) if TP+FP else 0.0
    if metric == 'recall': return TP/(TP+FN) if TP+FN else 0.0

def thresholds(vals, lo_lim=0.0, hi_lim=1.0, k=3):
    m = np.nanmean(vals); s = np.nanstd(vals)
    lo, hi = m-k*s, m+k*s
    if lo <= lo_lim: lo = lo_lim
    if hi >= hi_lim: hi = hi_lim
    return lo, hi

def chunks_of(df, size, ts):
    df = df.sort_values(ts, kind='stable').reset_index(drop=True)
    out = []
    for i in range(0, len(df), size):
        out.append(df.iloc[i:i+size])   # remainder kept as its own (smaller) chunk
    return out

def rows(chunks, period, fn):
    res = []
    for i, c in enumerate(chunks):
        r = dict(chunk_index=i, key=f'[{c.index.min()}:{c.index.max()}]', period=period); r.update(fn(c)); res.append(r)
    return res

def finalize(metric_vals, se, lo, hi):
    return dict(value=metric_vals, se=se, ucb=min(1.0, metric_vals+3*se), lcb=max(0.0, metric_vals-3*se),
                lower=lo, upper=hi, alert=(metric_vals < lo) or (metric_vals > hi))

# ---------------- binary ----------------
def cbpe_binary(ref, ana, yt_col, p_col, yp_col, ts, size, metrics):
    ref = ref.reset_index(drop=True)
    yt = ref[yt_col].to_numpy(); p = ref[p_col].to_numpy(float); yp = ref[yp_col].to_numpy()
    need, ecepair = needs_calibration(yt, p)
    cal = Isotonic().fit(p, yt) if need else Noop()
    comps = {}
    for m in metrics:
        comps[m] = auroc_se_component(yt, p, use_var=False) if m == 'roc_auc' else binary_se_components(m, yt, yp)
    refch = chunks_of(ref, size, ts)
    thr = {m: thresholds([realized_binary(m, c[yt_col].to_numpy(), c[yp_col].to_numpy(), c[p_col].to_numpy()) for c in refch]) for m in metrics}
    def chunk_fn(c):
        out = {}; n = len(c)
        unc = c[p_col].to_numpy(float); pc = cal.predict(unc); ypc = c[yp_col].to_numpy()
        for m in metrics:
            if m == 'roc_auc': v = estimate_roc_auc(pc, unc)
            else: v = EST[m](ypc, pc)
            s0, frac = comps[m]
            se = s0/np.sqrt(n) if m == 'accuracy' else s0/np.sqrt(n*frac)
            out[m] = finalize(v, se, *thr[m])
            if yt_col in c: out[m]['realized'] = realized_binary(m, c[yt_col].to_numpy(), ypc, unc)
        return out
    return need, ecepair, thr, comps, rows(refch, 'reference', chunk_fn) + rows(chunks_of(ana, size, ts), 'analysis', chunk_fn)

# ---------------- multiclass ----------------
def cbpe_multiclass(ref, ana, yt_col, pcols, yp_col, ts, size, metrics):
    classes = sorted(pcols); K = len(classes)
    cols = [pcols[c] for c in classes]
    yt = ref[yt_col].to_numpy(); yp = ref[yp_col].to_numpy()
    cals = {}; decisions = {}
    for c in classes:
        y01 = (yt == c).astype(int); pr = ref[pcols[c]].to_numpy(float)
        need, e = needs_calibration(y01, pr); decisions[c] = (need, e)
        cals[c] = Isotonic().fit(pr, y01) if need else Noop()
    def calibrate(df):
        P = np.column_stack([cals[c].predict(df[pcols[c]].to_numpy(float)) for c in classes])
        s = P.sum(1, keepdims=True)
        return np.where(s != 0, P/np.where(s == 0, 1, s), 1.0/K)
    comps = {}
    for m in metrics:
        if m == 'roc_auc':
            comps[m] = [auroc_se_component((yt == c).astype(int), ref[pcols[c]].to_numpy(float), use_var=True) for c in classes]
        elif m == 'accuracy':
            comps[m] = indicator_stat(np.sum(yt == yp), np.sum(yt != yp), 'std')
        else:
            lst = []
            for c in classes:
                t = (yt == c).astype(int); q = (yp == c).astype(int); TP, FP, FN, TN = counts(t, q); n = len(t)
                if m == 'f1': lst.append((indicator_stat(TP, FN+FP, 'var'), (TP+FN+FP)/n))
                if m == 'precision': lst.append((indicator_stat(TP, FP, 'var'), q.sum()/n))
                if m == 'recall': lst.append((indicator_stat(TP, FN, 'var'), t.sum()/n))
                if m == 'specificity': lst.append((indicator_stat(TN, FP, 'var'), (TN+FP)/n))
            comps[m] = lst
    def realized(m, c):
        t = c[yt_col].to_numpy(); q = c[yp_col].to_numpy()
        if m == 'roc_auc':
            if set(np.unique(t)) != set(classes): return np.nan
            return np.mean([auc_tie_aware((t == k).astype(int), c[pcols[k]].to_numpy(float)) for k in classes])
        if len(np.unique(t)) <= 1 or len(np.unique(q)) <= 1: return np.nan
        if m == 'accuracy': return np.mean(t == q)
        vals = []
        for k in classes:
            TP, FP, FN, TN = counts((t == k).astype(int), (q == k).astype(int))
            if m == 'f1': vals.append(2*TP/(2*TP+FP+FN) if (2*TP+FP+FN) else 0.0)
            if m == 'precision': vals.append(TP/(TP+FP) if TP+FP else 0.0)
            if m == 'recall': vals.append(TP/(TP+FN) if TP+FN else 0.0)
            if m == 'specificity': vals.append(TN/(TN+FP))
        return np.mean(vals)
    refch = chunks_of(ref, size, ts)
    thr = {m: thresholds([realized(m, c) for c in refch]) for m in metrics}
    def chunk_fn(c):
        out = {}; n = len(c)
        P = calibrate(c); U = c[cols].to_numpy(float); q = c[yp_col].to_numpy()
        Q = np.column_stack([(q == k).astype(int) for k in classes])
        for m in metrics:
            if m == 'roc_auc':
                v = np.mean([estimate_roc_auc(P[:, i], U[:, i]) for i in range(K)])
                se = np.sqrt(sum(v_/(n*f) for v_, f in comps[m]))/K*1.2
            elif m == 'accuracy':
                v = np.mean(np.max(Q*P, axis=1)); se = comps[m]/np.sqrt(n)
            else:
                v = np.mean([EST[m](Q[:, i], P[:, i]) for i in range(K)])
                se = np.sqrt(sum(v_/(n*f) for v_, f in comps[m]))/K
            out[m] = finalize(v, se, *thr[m])
            if yt_col in c: out[m]['realized'] = realized(m, c)
        return out
    return decisions, thr, comps, rows(refch, 'reference', chunk_fn) + rows(chunks_of(ana, size, ts), 'analysis', chunk_fn)

def compare(rows_, nml_csv, metrics, label):
    d = pd.read_csv(nml_csv)
    worst = {}
    for i, r in enumerate(rows_):
        for m in metrics:
            for k, col in [('value', 'value'), ('se', 'sampling_error'), ('ucb', 'upper_confidence_boundary'), ('lcb', 'lower_confidence_boundary'), ('upper', 'upper_threshold'), ('lower', 'lower_threshold'), ('realized', 'realized')]:
                a = r[m].get(k, np.nan); b = d.loc[i, f'{m}_{col}']
                if np.isnan(a) and np.isnan(b): continue
                worst[(m, k)] = max(worst.get((m, k), 0), abs(a-b))
            assert bool(r[m]['alert']) == bool(d.loc[i, f'{m}_alert']), (label, i, m)
    print(label, 'max abs diffs vs nannyml:'); 
    for (m, k), v in sorted(worst.items()): print(f'   {m:10s} {k:9s} {v:.3e}')

if __name__ == '__main__':
    D = '/tmp/cbpe-research/src/nannyml/datasets/data/'
    if len(sys.argv) > 1: SORT_KIND = sys.argv[1]
    M = ['roc_auc', 'f1', 'precision', 'recall', 'accuracy']
    ref = pd.read_csv(D+'synthetic_sample_reference.csv'); ana = pd.read_csv(D+'synthetic_sample_analysis.csv')
    need, e, thr, comps, rs = cbpe_binary(ref, ana, 'work_home_actual', 'y_pred_proba', 'y_pred', 'timestamp', 5000, M)
    print('binary needs_calibration', need, e); print(' comps', comps)
    compare(rs, '/tmp/cbpe-research/binary_result.csv', M, 'binary')
    ref = pd.read_csv(D+'mc_reference.csv'); ana = pd.read_csv(D+'mc_analysis.csv')
    pc = {c: 'y_pred_proba_'+c for c in ['prepaid_card', 'highstreet_card', 'upmarket_card']}
    dec, thr, comps, rs = cbpe_multiclass(ref, ana, 'y_true', pc, 'y_pred', 'timestamp', 5000, M)
    print('multiclass decisions', dec); print(' comps', comps)
    compare(rs, '/tmp/cbpe-research/multiclass_result.csv', M, 'multiclass')

//! The random splits NannyML's calibration check draws: scikit-learn's
//! `StratifiedShuffleSplit(n_splits=10, test_size=0.1, random_state=42)` on numpy's legacy
//! `RandomState` (MT19937). Replicated draw for draw, so that driftline decides to calibrate
//! exactly when NannyML does (the decision can turn on a few ten-thousandths of calibration
//! error: docs/research/nannyml-cbpe-0.13.1.md, §2).

/// numpy's legacy MT19937, seeded as `RandomState(seed)` seeds it (`init_genrand`).
pub struct Mt19937 {
    state: [u32; 624],
    next: usize,
}

impl Mt19937 {
    pub fn new(seed: u32) -> Self {
        let mut state = [0u32; 624];
        state[0] = seed;
        for i in 1..624 {
            let previous = state[i - 1];
            state[i] = 1_812_433_253u32
                .wrapping_mul(previous ^ (previous >> 30))
                .wrapping_add(i as u32);
        }
        Mt19937 { state, next: 624 }
    }

    fn twist(&mut self) {
        for i in 0..624 {
            let y = (self.state[i] & 0x8000_0000) | (self.state[(i + 1) % 624] & 0x7fff_ffff);
            let mut v = self.state[(i + 397) % 624] ^ (y >> 1);
            if y & 1 == 1 {
                v ^= 0x9908_b0df;
            }
            self.state[i] = v;
        }
        self.next = 0;
    }

    pub fn next_u32(&mut self) -> u32 {
        if self.next >= 624 {
            self.twist();
        }
        let mut y = self.state[self.next];
        self.next += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// A uniform integer in `0..=max` by masked rejection (numpy's `random_interval`).
    fn interval(&mut self, max: u64) -> u64 {
        if max == 0 {
            return 0;
        }
        let mut mask = max;
        for shift in [1, 2, 4, 8, 16, 32] {
            mask |= mask >> shift;
        }
        loop {
            let v = if max <= u64::from(u32::MAX) {
                u64::from(self.next_u32()) & mask
            } else {
                ((u64::from(self.next_u32()) << 32) | u64::from(self.next_u32())) & mask
            };
            if v <= max {
                return v;
            }
        }
    }

    /// Fisher–Yates from the back, as `RandomState.shuffle` does.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.interval(i as u64) as usize;
            items.swap(i, j);
        }
    }

    /// `RandomState.permutation(n)`.
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut items: Vec<usize> = (0..n).collect();
        self.shuffle(&mut items);
        items
    }
}

/// scikit-learn's `_approximate_mode`: how many of `n_draws` each class gets, proportionally,
/// the remainders handed out at random among the largest fractional parts.
fn approximate_mode(counts: &[usize], n_draws: usize, rng: &mut Mt19937) -> Vec<usize> {
    let total: usize = counts.iter().sum();
    let continuous: Vec<f64> = (counts.iter())
        .map(|&c| c as f64 / total as f64 * n_draws as f64)
        .collect();
    let mut floored: Vec<f64> = continuous.iter().map(|c| c.floor()).collect();
    let mut need = (n_draws as f64 - floored.iter().sum::<f64>()) as i64;
    if need > 0 {
        let remainder: Vec<f64> = continuous
            .iter()
            .zip(&floored)
            .map(|(c, f)| c - f)
            .collect();
        let mut values = remainder.clone();
        values.sort_by(|a, b| b.total_cmp(a));
        values.dedup();
        for value in values {
            let inds: Vec<usize> = (0..remainder.len())
                .filter(|&i| remainder[i] == value)
                .collect();
            let add = inds.len().min(need as usize);
            let chosen = rng.permutation(inds.len());
            for &k in &chosen[..add] {
                floored[inds[k]] += 1.0;
            }
            need -= add as i64;
            if need == 0 {
                break;
            }
        }
    }
    floored.iter().map(|&f| f as usize).collect()
}

/// The (train, test) row indices of each of `splits` stratified shuffle splits of `labels`.
pub fn stratified_shuffle_split(
    labels: &[i64],
    splits: usize,
    test_share: f64,
    seed: u32,
) -> Vec<(Vec<usize>, Vec<usize>)> {
    let n = labels.len();
    let n_test = (test_share * n as f64).ceil() as usize;
    let n_train = n - n_test;
    let mut classes: Vec<i64> = labels.to_vec();
    classes.sort_unstable();
    classes.dedup();
    // Each class's rows, ascending (a stable argsort of the class index).
    let class_rows: Vec<Vec<usize>> = (classes.iter())
        .map(|c| (0..n).filter(|&i| labels[i] == *c).collect())
        .collect();
    let counts: Vec<usize> = class_rows.iter().map(Vec::len).collect();
    let mut rng = Mt19937::new(seed);
    let mut out = Vec::with_capacity(splits);
    for _ in 0..splits {
        let train_counts = approximate_mode(&counts, n_train, &mut rng);
        let left: Vec<usize> = counts
            .iter()
            .zip(&train_counts)
            .map(|(c, t)| c - t)
            .collect();
        let test_counts = approximate_mode(&left, n_test, &mut rng);
        let (mut train, mut test) = (Vec::with_capacity(n_train), Vec::with_capacity(n_test));
        for (k, rows) in class_rows.iter().enumerate() {
            let permuted: Vec<usize> = rng
                .permutation(rows.len())
                .iter()
                .map(|&i| rows[i])
                .collect();
            train.extend_from_slice(&permuted[..train_counts[k]]);
            test.extend_from_slice(&permuted[train_counts[k]..train_counts[k] + test_counts[k]]);
        }
        rng.shuffle(&mut train);
        rng.shuffle(&mut test);
        out.push((train, test));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mt19937_matches_the_reference_sequence() {
        // init_genrand(5489)'s first outputs (the reference implementation's default seed).
        let mut rng = Mt19937::new(5489);
        let first: Vec<u32> = (0..3).map(|_| rng.next_u32()).collect();
        assert_eq!(first, vec![3_499_211_612, 581_869_302, 3_890_346_734]);
    }

    #[test]
    fn splits_keep_the_class_shares_and_sizes() {
        let labels: Vec<i64> = (0..200).map(|i| i64::from(i % 4 == 0)).collect();
        for (train, test) in stratified_shuffle_split(&labels, 10, 0.1, 42) {
            assert_eq!((train.len(), test.len()), (180, 20));
            assert_eq!(test.iter().filter(|&&i| labels[i] == 1).count(), 5);
            let mut all: Vec<usize> = train.iter().chain(&test).copied().collect();
            all.sort_unstable();
            all.dedup();
            assert_eq!(all.len(), 200, "train and test are disjoint");
        }
    }
}

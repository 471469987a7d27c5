// An output against its reference, as runtime/parity.py `compare` and `within` judge it: max and mean |diff|,
// PSNR (peak = the output's value range), NaN/Inf always failing; several comparisons merged worst-case.
export function compare(output, reference, peak = 1) {
  if (output.length !== reference.length) return { max: Infinity, mean: Infinity, psnr: -Infinity, finite: false };
  let max = 0, sum = 0, squares = 0, finite = true;
  for (let i = 0; i < output.length; i++) {
    if (!Number.isFinite(output[i])) { finite = false; break; }
    const d = Math.abs(output[i] - reference[i]);
    if (d > max) max = d;
    sum += d;
    squares += d * d;
  }
  if (!finite) return { max: Infinity, mean: Infinity, psnr: -Infinity, finite };
  const mse = squares / output.length;
  return { max, mean: sum / output.length, psnr: mse === 0 ? Infinity : 10 * Math.log10((peak * peak) / mse), finite };
}

export function merge(results) {
  return {
    max: Math.max(...results.map((r) => r.max)),
    mean: Math.max(...results.map((r) => r.mean)),
    psnr: Math.min(...results.map((r) => r.psnr)),
    finite: results.every((r) => r.finite),
  };
}

export function within(tolerance, result) {
  if (!result.finite) return false;
  if ('max_abs_diff' in tolerance && !(result.max <= tolerance.max_abs_diff)) return false;
  if ('mean_abs_diff' in tolerance && !(result.mean <= tolerance.mean_abs_diff)) return false;
  return !('min_psnr_db' in tolerance) || result.psnr >= tolerance.min_psnr_db;
}

export function describeTolerance(tolerance) {
  return Object.entries(tolerance)
    .map(([k, v]) => `${k.replace('_db', '').replace('_abs_diff', '|d|')} ${v}`).join(', ');
}

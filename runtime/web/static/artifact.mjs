// The artifact as the server offers it: web.json (the page plan: runtime/web/plan.py), files under /artifact/,
// each checked against the manifest's sha256 before use, and .npy references.

export async function loadPlan() {
  const response = await fetch('/web.json');
  if (!response.ok) throw new Error(`web.json: HTTP ${response.status} (is this page served by python -m runtime.web?)`);
  return response.json();
}

async function sha256(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

// The bytes of artifact file `rel`, refused unless its sha256 is the manifest's.
export async function artifactBytes(plan, rel) {
  const response = await fetch('/artifact/' + rel.split('/').map(encodeURIComponent).join('/'));
  if (!response.ok) throw new Error(`${rel}: HTTP ${response.status}`);
  const bytes = new Uint8Array(await response.arrayBuffer());
  const digest = await sha256(bytes);
  if (digest !== plan.files[rel]) throw new Error(`${rel}: sha256 differs from the manifest (file changed or corrupt)`);
  return bytes;
}

// A float32 little-endian C-order .npy (format 1.0 or 2.0) whose shape must be `shape`.
export function parseNpy(bytes, shape, rel) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = String.fromCharCode(...bytes.subarray(1, 6));
  if (bytes[0] !== 0x93 || magic !== 'NUMPY') throw new Error(`${rel}: not a .npy file`);
  const major = bytes[6];
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = (major === 1 ? 10 : 12) + headerLength;
  const header = new TextDecoder().decode(bytes.subarray(major === 1 ? 10 : 12, start));
  const descr = /'descr':\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*True/.test(header);
  const stored = (/'shape':\s*\(([^)]*)\)/.exec(header)?.[1] || '').split(',').filter((s) => s.trim()).map(Number);
  if (descr !== '<f4' || fortran || stored.join(',') !== shape.join(',')) {
    throw new Error(`${rel}: holds ${descr} ${fortran ? 'Fortran-order ' : ''}(${stored}); the manifest records ` +
                    `float32 (${shape})`);
  }
  const count = shape.reduce((a, b) => a * b, 1);
  if (bytes.byteLength !== start + 4 * count) throw new Error(`${rel}: ${bytes.byteLength} bytes; its header needs ${start + 4 * count}`);
  return new Float32Array(bytes.slice(start).buffer);
}

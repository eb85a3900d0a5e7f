/**
 * `node bench/profile-read.mjs a.cpuprofile [top=40]`: self time by file and by function.
 * `node bench/profile-read.mjs on.cpuprofile off.cpuprofile RECORDS_ON RECORDS_OFF [top=30]`: the
 * difference on - off, the off profile scaled to the on run's record count (what forwarding adds).
 */
import { readFileSync } from 'node:fs';

function load(file) {
  const p = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const fn = new Map();
  const byFile = new Map();
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const cf = byId.get(p.samples[i]).callFrame;
    const t = (p.timeDeltas[i] ?? 0) / 1000;
    total += t;
    const f = cf.url.replace(/.*node_modules\//, 'nm/').replace(/.*raqeem-relay-bench\//, 'BUILD/') || '(native)';
    const k = `${cf.functionName || '(anon)'} ${f}:${cf.lineNumber}`;
    fn.set(k, (fn.get(k) ?? 0) + t);
    const fk = f.startsWith('nm/') ? f.split('/').slice(0, 2).join('/') : f;
    byFile.set(fk, (byFile.get(fk) ?? 0) + t);
  }
  return { fn, byFile, total };
}

const print = (entries, top, total) =>
  entries
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .forEach(([k, ms]) =>
      console.log(`${total ? `${((100 * ms) / total).toFixed(1).padStart(5)}% ` : ''}${ms.toFixed(0).padStart(7)} ms ${k}`),
    );

const args = process.argv.slice(2);
if (args.length >= 4) {
  const [onFile, offFile, recOn, recOff, top = '30'] = args;
  const on = load(onFile);
  const off = load(offFile);
  const scale = Number(recOn) / Number(recOff);
  for (const key of ['byFile', 'fn']) {
    console.log(`--- ${key === 'fn' ? 'by function' : 'by file'}: on - off x ${scale.toFixed(2)} (ms)`);
    const keys = new Set([...on[key].keys(), ...off[key].keys()]);
    print(
      [...keys].map((k) => [k, (on[key].get(k) ?? 0) - (off[key].get(k) ?? 0) * scale]),
      Number(top),
    );
  }
} else {
  const [file, top = '40'] = args;
  const p = load(file);
  console.log(`total ${p.total.toFixed(0)} ms`);
  console.log('--- by file');
  print([...p.byFile], Number(top), p.total);
  console.log('--- by function');
  print([...p.fn], Number(top), p.total);
}

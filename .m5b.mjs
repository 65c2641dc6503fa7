import fs from 'node:fs';
const { Cordon } = await import('/work/before/dist/actors/cordon.js');
const root = '/tmp/m5b-root'; fs.rmSync(root, { recursive: true, force: true });
const lib = await Cordon.open({ root });
const nul = fs.openSync('/dev/null', 'r+');
const B = '/tmp/bundle-true';
const times = { create: [], run: [], destroy: [] };
for (let i = 0; i < 40; i++) {
  let t = performance.now();
  const c = await lib.create(`m5-${i}`, { bundle: B, stdio: [nul, nul, nul] });
  times.create.push(performance.now() - t); t = performance.now();
  await c.run();
  times.run.push(performance.now() - t); t = performance.now();
  await c.destroy();
  times.destroy.push(performance.now() - t);
}
const med = (xs) => xs.slice(5).sort((a, b) => a - b)[Math.floor((xs.length - 5) / 2)].toFixed(2);
console.log(Object.fromEntries(Object.entries(times).map(([k, v]) => [k, med(v)])));
await lib.close();

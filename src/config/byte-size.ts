/**
 * Sizes in bytes, written as a number or with a unit, because operators copy "35 MB" from Microsoft's pages:
 *   SI  (powers of 1000): B, KB, MB, GB       `35MB`   = 35000000
 *   IEC (powers of 1024): KiB, MiB, GiB       `35 MiB` = 36700160 (Exchange Online's "35 MB" limit is this one)
 * Case does not matter; a space before the unit is allowed. A bare letter (`35M`, `35k`) could mean either, so it
 * is refused, and check-config gives both readings as the exact number to write.
 */
import { z } from 'zod';

const UNITS: Record<string, number> = { b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };
const SIZE = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i;

/** The number of bytes `text` stands for, or null when it is not a size with a known unit. */
export function parseByteSize(text: string): number | null {
  const m = SIZE.exec(text);
  if (!m) return null;
  const factor = UNITS[(m[2] || 'b').toLowerCase()];
  return factor === undefined ? null : Math.round(Number(m[1]) * factor);
}

/** For a refused size (`35M`): the readings it may have meant, in bytes; null when no number can be read from it. */
export function byteSizeReadings(text: string): string | null {
  const m = SIZE.exec(text);
  if (!m) return null;
  const n = Number(m[1]);
  const prefix = (m[2] ?? '').toLowerCase().replace(/i?b?$/, '');
  const scale = { k: 1, m: 2, g: 3 }[prefix];
  if (scale === undefined) return `write a number of bytes, e.g. ${Math.round(n)}, or a size with a unit: ${n}KB, ${n}MB, ${n}MiB`;
  const si = Math.round(n * 1000 ** scale);
  const iec = Math.round(n * 1024 ** scale);
  const unit = prefix.toUpperCase();
  return `write ${iec} (${n} ${unit}iB, as Exchange Online counts) or ${si} (${n} ${unit}B), or the size with that unit`;
}

/** A byte-size key: a whole number of bytes, or a string with a unit (converted before the checks). */
export function byteSize(opts: { min: number; default: number; description: string }) {
  // The default sits inside: outside the preprocess step it would be missing from the generated docs.
  return z
    .preprocess((value) => (typeof value === 'string' ? (parseByteSize(value) ?? value) : value), z.number().int().min(opts.min).default(opts.default))
    .meta({ description: `${opts.description}; bytes, or with a unit: 35MB = 35000000, 35MiB = 36700160`, byteSize: true });
}

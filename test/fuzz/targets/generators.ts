/** Generators several fuzz targets share. */
import fc from 'fast-check';

/** The bytes of `whole`, cut at random places: parsers must not depend on how TCP splits a stream. */
export function chunked(whole: fc.Arbitrary<Buffer>): fc.Arbitrary<Buffer[]> {
  return whole.chain((bytes) =>
    fc.uniqueArray(fc.integer({ min: 1, max: Math.max(1, bytes.length - 1) }), { maxLength: Math.min(8, bytes.length) }).map((cuts) => {
      const points = [0, ...cuts.filter((c) => c < bytes.length).sort((a, b) => a - b), bytes.length];
      const parts: Buffer[] = [];
      for (let i = 1; i < points.length; i += 1) if (points[i]! > points[i - 1]!) parts.push(bytes.subarray(points[i - 1], points[i]));
      return parts.length > 0 ? parts : [bytes];
    }),
  );
}

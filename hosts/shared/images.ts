/**
 * The image formats a screenshot may have, recognised by their magic bytes (never by a declared type or a
 * file name): the devices host checks uploads with it, the mentor the images forwarded with records.
 */
export interface ImageType {
  type: 'image/png' | 'image/jpeg' | 'image/webp';
  ext: 'png' | 'jpg' | 'webp';
  test(bytes: Buffer): boolean;
}

const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export const IMAGE_TYPES: readonly ImageType[] = [
  { type: 'image/png', ext: 'png', test: (b) => b.subarray(0, 8).equals(PNG_MAGIC) },
  { type: 'image/jpeg', ext: 'jpg', test: (b) => b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff },
  {
    type: 'image/webp',
    ext: 'webp',
    test: (b) => b.subarray(0, 4).toString('latin1') === 'RIFF' && b.subarray(8, 12).toString('latin1') === 'WEBP',
  },
];

export const sniffImage = (bytes: Buffer): ImageType | undefined => IMAGE_TYPES.find((t) => t.test(bytes));

/** The file extension of a stored content type (`bin` for anything else). */
export const extensionOf = (contentType: string): string => IMAGE_TYPES.find((t) => t.type === contentType)?.ext ?? 'bin';

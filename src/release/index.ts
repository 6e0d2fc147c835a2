export * from './layout.ts';
export * from './releases-file.ts';
export * from './cookie.ts';
export * from './checksum.ts';
export * from './process.ts';

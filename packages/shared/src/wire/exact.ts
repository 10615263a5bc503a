// Type-level equality, for proving at compile time that two independently written types agree.

/**
 * True when A and B are the same type, including `readonly` and optional modifiers. Plain mutual
 * assignability is too weak for this (it ignores `readonly`, and `any` passes everything), so this
 * uses the compiler's own identity check on deferred conditional types.
 */
export type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

/** `Expect<Equals<A, B>>` fails to compile unless A and B are identical. */
export type Expect<T extends true> = T;

export declare const POSTGRES_HINT: string;
export declare function findPostgresBin(root?: string): string | null;

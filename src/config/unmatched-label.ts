/**
 * The label value that request metrics give a request no route, upstream or endpoint took. The
 * config refuses it as a name, since one named so would be counted with the unmatched.
 */
export const UNMATCHED_LABEL = 'none'

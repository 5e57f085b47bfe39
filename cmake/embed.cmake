# Turns IN (any file) into OUT, a C initializer: the bytes as a
# comma-separated hex list followed by a terminating 0, so
#   static const char x[] = {
#   #include "x.inc"
#   };
# is the file as a NUL-terminated string.
file(READ "${IN}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" body "${body}")
file(WRITE "${OUT}.tmp" "${body}0x00\n")
file(RENAME "${OUT}.tmp" "${OUT}")

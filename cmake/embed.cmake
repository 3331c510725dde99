# Turns the standard library's .dl files into a C source that embeds them, so `dlc` needs no
# files beside it. Run as: cmake -DOUT=file.c -DFILES="a.dl;b.dl" -P embed.cmake
file(WRITE ${OUT}.tmp "/* Generated from lang/std by cmake/embed.cmake: do not edit. */\n"
     "#include \"frontend/stdlib.h\"\n\nconst fe_std_file fe_std_files[] = {\n")
foreach(f ${FILES})
  get_filename_component(name ${f} NAME)
  file(READ ${f} hex HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
  string(LENGTH "${hex}" n)
  file(APPEND ${OUT}.tmp "    {\"${name}\", (const char[]){${hex} 0}},\n")
endforeach()
file(APPEND ${OUT}.tmp "    {0, 0},\n};\n")
file(RENAME ${OUT}.tmp ${OUT})

# cmake/report.cmake - the page of `zw report` (docs/report.md#building). `npm ci` installs the
# libraries pinned by tools/zw/report/package-lock.json into the build tree (never the source
# tree), then embed.js inlines them, report.css and report.js into zw_report_assets.c. Both steps
# rerun only when their inputs change. Without the npm registry the build stops and says so;
# -DZW_REPORT=OFF builds zw without `report` (which then says why it is missing).
option(ZW_REPORT "Build zw report (fetches uPlot and d3-flame-graph with npm at build time)" ON)
set(ZW_REPORT_SRC ${CMAKE_CURRENT_SOURCE_DIR}/tools/zw/report)
set(ZW_REPORT_NPM ${CMAKE_BINARY_DIR}/report-npm)
set(ZW_REPORT_NODE_MODULES ${ZW_REPORT_NPM}/node_modules)
if(NOT ZW_REPORT)
  message(STATUS "report: ZW_REPORT=OFF: zw is built without 'report'")
  target_compile_definitions(zw PRIVATE
    "ZW_REPORT_MISSING=\"it was configured with -DZW_REPORT=OFF (see docs/report.md)\"")
  return()
endif()
find_program(ZW_NODE NAMES node nodejs)
find_program(ZW_NPM npm)
if(NOT ZW_NODE OR NOT ZW_NPM)
  message(FATAL_ERROR "zw report needs node and npm to fetch its libraries: run "
    "scripts/install-deps build, or configure with -DZW_REPORT=OFF to build zw without 'report'")
endif()
add_custom_command(OUTPUT ${ZW_REPORT_NPM}/installed.stamp
  COMMAND ${CMAKE_COMMAND} -E make_directory ${ZW_REPORT_NPM}
  COMMAND ${CMAKE_COMMAND} -E copy ${ZW_REPORT_SRC}/package.json ${ZW_REPORT_SRC}/package-lock.json
    ${ZW_REPORT_NPM}/
  COMMAND sh ${ZW_REPORT_SRC}/npm-ci.sh ${ZW_NPM} ${ZW_REPORT_NPM}
  COMMAND ${CMAKE_COMMAND} -E touch ${ZW_REPORT_NPM}/installed.stamp
  DEPENDS ${ZW_REPORT_SRC}/package.json ${ZW_REPORT_SRC}/package-lock.json
    ${ZW_REPORT_SRC}/npm-ci.sh
  COMMENT "Installing the report's pinned libraries with npm ci (tools/zw/report/package-lock.json)"
  VERBATIM)
add_custom_command(OUTPUT ${CMAKE_BINARY_DIR}/zw_report_assets.c
  COMMAND ${ZW_NODE} ${ZW_REPORT_SRC}/embed.js ${ZW_REPORT_NODE_MODULES} ${ZW_REPORT_SRC}
    ${CMAKE_BINARY_DIR}/zw_report_assets.c
  DEPENDS ${ZW_REPORT_NPM}/installed.stamp ${ZW_REPORT_SRC}/embed.js ${ZW_REPORT_SRC}/report.html
    ${ZW_REPORT_SRC}/report.css ${ZW_REPORT_SRC}/report.js
  COMMENT "Inlining the report's scripts and styles into zw_report_assets.c"
  VERBATIM)
target_sources(zw PRIVATE ${CMAKE_BINARY_DIR}/zw_report_assets.c)
target_compile_definitions(zw PRIVATE ZW_REPORT_ASSETS)

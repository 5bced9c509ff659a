# kconfig.cmake - the host build's configuration step, as ESP-IDF does it for a target,
# with kconfgen from esp-idf-kconfig.
#
# Included by host.cmake at configure time, or run on its own (no compiler, no core
# sources needed):
#   cmake -DESPNOW_SEC_CONFIG=<name> [-DESPNOW_SEC_MENUCONFIG=ON] -P host/kconfig.cmake
#
# Inputs   host/Kconfig (stands in for ESP-IDF's root Kconfig), the component's Kconfig,
#          main/Kconfig.projbuild, sdkconfig.defaults [+ sdkconfig.ci.<ESPNOW_SEC_CONFIG>]
# Outputs  in ESPNOW_SEC_BINARY_DIR (default build/host/<config>):
#            sdkconfig, config/sdkconfig.h, config/sdkconfig.json (IDF_TARGET "linux",
#            APP_BUILD_TYPE_ELF_ONLY true: what pytest-embedded-idf reads), config/sdkconfig.cmake
# kconfgen lets an existing sdkconfig win over the defaults, so the sdkconfig is rebuilt
# from scratch whenever a defaults file is newer than it; `make menuconfig` edits last until
# then.
cmake_minimum_required(VERSION 3.16)

get_filename_component(ESPNOW_SEC_SOURCE_DIR "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
if(NOT ESPNOW_SEC_CONFIG)
    set(ESPNOW_SEC_CONFIG "default")
endif()
if(NOT ESPNOW_SEC_BINARY_DIR)
    set(ESPNOW_SEC_BINARY_DIR "${ESPNOW_SEC_SOURCE_DIR}/build/host/${ESPNOW_SEC_CONFIG}")
endif()
get_filename_component(ESPNOW_SEC_BINARY_DIR "${ESPNOW_SEC_BINARY_DIR}" ABSOLUTE)

# ---- Python with kconfgen ----------------------------------------------------------------
if(NOT ESPNOW_SEC_PYTHON)
    if(EXISTS "${ESPNOW_SEC_SOURCE_DIR}/.venv/bin/python")
        set(ESPNOW_SEC_PYTHON "${ESPNOW_SEC_SOURCE_DIR}/.venv/bin/python")
    else()
        find_program(ESPNOW_SEC_PYTHON_FOUND NAMES python3 python)
        set(ESPNOW_SEC_PYTHON "${ESPNOW_SEC_PYTHON_FOUND}")
    endif()
endif()
execute_process(COMMAND "${ESPNOW_SEC_PYTHON}" -c "import kconfgen"
                RESULT_VARIABLE _rc OUTPUT_QUIET ERROR_QUIET)
if(NOT _rc EQUAL 0)
    message(FATAL_ERROR
        "kconfgen (esp-idf-kconfig) is not importable by '${ESPNOW_SEC_PYTHON}'. Run "
        "`make setup` (creates .venv), or pass -DESPNOW_SEC_PYTHON=<python with esp-idf-kconfig>.")
endif()

# ---- inputs ------------------------------------------------------------------------------
set(ESPNOW_SEC_CONFIG_DIR "${ESPNOW_SEC_BINARY_DIR}/config")
set(_sdkconfig "${ESPNOW_SEC_BINARY_DIR}/sdkconfig")
set(_defaults "${ESPNOW_SEC_SOURCE_DIR}/sdkconfig.defaults")
if(NOT ESPNOW_SEC_CONFIG STREQUAL "default")
    set(_ci "${ESPNOW_SEC_SOURCE_DIR}/sdkconfig.ci.${ESPNOW_SEC_CONFIG}")
    if(NOT EXISTS "${_ci}")
        message(FATAL_ERROR "ESPNOW_SEC_CONFIG=${ESPNOW_SEC_CONFIG}: ${_ci} does not exist. Use "
                            "'default' or the <name> of an sdkconfig.ci.<name> file.")
    endif()
    list(APPEND _defaults "${_ci}")
endif()
set(_component_kconfig "${ESPNOW_SEC_SOURCE_DIR}/components/espnow_security/Kconfig")
set(_main_projbuild "${ESPNOW_SEC_SOURCE_DIR}/main/Kconfig.projbuild")

# What host/Kconfig sources, named by the same variables as in ESP-IDF's root Kconfig.
file(MAKE_DIRECTORY "${ESPNOW_SEC_CONFIG_DIR}")
set(_kconfigs_in "${ESPNOW_SEC_CONFIG_DIR}/kconfigs.in")
set(_projbuild_in "${ESPNOW_SEC_CONFIG_DIR}/kconfigs_projbuild.in")
file(CONFIGURE OUTPUT "${_kconfigs_in}" CONTENT "source \"${_component_kconfig}\"\n")
file(CONFIGURE OUTPUT "${_projbuild_in}" CONTENT "source \"${_main_projbuild}\"\n")

set(ESPNOW_SEC_KCONFIG_INPUTS
    "${ESPNOW_SEC_SOURCE_DIR}/host/Kconfig" "${_component_kconfig}" "${_main_projbuild}"
    "${ESPNOW_SEC_SOURCE_DIR}/Kconfig.projbuild" ${_defaults} "${_sdkconfig}")

foreach(_input ${_defaults})
    if(EXISTS "${_sdkconfig}" AND "${_input}" IS_NEWER_THAN "${_sdkconfig}")
        message(STATUS "${_input} changed: regenerating ${_sdkconfig} from the defaults")
        file(REMOVE "${_sdkconfig}")
    endif()
endforeach()

# ---- kconfgen ----------------------------------------------------------------------------
set(_args -m kconfgen --kconfig "${ESPNOW_SEC_SOURCE_DIR}/host/Kconfig"
    --env IDF_TARGET=linux
    --env "COMPONENT_KCONFIGS_SOURCE_FILE=${_kconfigs_in}"
    --env "COMPONENT_KCONFIGS_PROJBUILD_SOURCE_FILE=${_projbuild_in}"
    --env "KCONFIG_CONFIG=${_sdkconfig}")
foreach(_d ${_defaults})
    list(APPEND _args --defaults "${_d}")
endforeach()
list(APPEND _args --config "${_sdkconfig}")
if(ESPNOW_SEC_MENUCONFIG)
    list(APPEND _args --menuconfig)
endif()
list(APPEND _args
    --output config "${_sdkconfig}"
    --output header "${ESPNOW_SEC_CONFIG_DIR}/sdkconfig.h"
    --output json "${ESPNOW_SEC_CONFIG_DIR}/sdkconfig.json"
    --output cmake "${ESPNOW_SEC_CONFIG_DIR}/sdkconfig.cmake")

# kconfgen leaves an empty kconfgen_tmp*.old in the temp folder on every run: keep them in the
# build folder instead of /tmp.
set(_kconfgen_tmp "${ESPNOW_SEC_CONFIG_DIR}/kconfgen-tmp")
file(MAKE_DIRECTORY "${_kconfgen_tmp}")
list(PREPEND _args "${CMAKE_COMMAND}" -E env "TMPDIR=${_kconfgen_tmp}" "${ESPNOW_SEC_PYTHON}")
if(ESPNOW_SEC_MENUCONFIG)
    # Interactive: the TUI needs the terminal, so nothing is captured.
    execute_process(COMMAND ${_args}
                    WORKING_DIRECTORY "${ESPNOW_SEC_SOURCE_DIR}" RESULT_VARIABLE _rc)
    set(_out "")
else()
    execute_process(COMMAND ${_args}
                    WORKING_DIRECTORY "${ESPNOW_SEC_SOURCE_DIR}" RESULT_VARIABLE _rc
                    OUTPUT_VARIABLE _out ERROR_VARIABLE _out)
endif()
if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "kconfgen failed (${_rc}):\n${_out}")
endif()
if(NOT EXISTS "${ESPNOW_SEC_CONFIG_DIR}/sdkconfig.cmake")
    message(FATAL_ERROR "kconfgen wrote no ${ESPNOW_SEC_CONFIG_DIR}/sdkconfig.cmake")
endif()
include("${ESPNOW_SEC_CONFIG_DIR}/sdkconfig.cmake")
if(NOT CONFIG_IDF_TARGET STREQUAL "linux")
    message(FATAL_ERROR "kconfgen produced IDF_TARGET='${CONFIG_IDF_TARGET}', expected 'linux'")
endif()

# host.cmake - the Linux host build, included by the top-level CMakeLists.txt when
# ESPNOW_SEC_HOST=ON. The build folder doubles as a pytest-embedded-idf app folder:
# sdkconfig, config/ (sdkconfig.h, sdkconfig.json) and exactly one espnow_node.elf.

set(ESPNOW_SEC_CONFIG "default" CACHE STRING
    "Configuration: 'default' (sdkconfig.defaults) or <name> (+ sdkconfig.ci.<name>)")
set(ESPNOW_SEC_PYTHON "" CACHE FILEPATH "Python with esp-idf-kconfig (default: .venv)")
option(ESPNOW_SEC_SANITIZE "Build with AddressSanitizer and UndefinedBehaviorSanitizer" OFF)

set(CMAKE_C_STANDARD 11)
set(CMAKE_C_STANDARD_REQUIRED ON)
set(CMAKE_C_EXTENSIONS ON)
if(NOT CMAKE_BUILD_TYPE AND NOT CMAKE_CONFIGURATION_TYPES)
    set(CMAKE_BUILD_TYPE RelWithDebInfo CACHE STRING "Build type" FORCE)
endif()
if(ESPNOW_SEC_SANITIZE)
    add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer)
    add_link_options(-fsanitize=address,undefined)
endif()

set(ESPNOW_SEC_BINARY_DIR "${CMAKE_BINARY_DIR}")
include("${CMAKE_CURRENT_LIST_DIR}/kconfig.cmake")
# Configure again when an input changes (the sdkconfig too: `make menuconfig` edits it).
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${ESPNOW_SEC_KCONFIG_INPUTS})

message(STATUS "espnow_security host build: config '${ESPNOW_SEC_CONFIG}' -> ${CMAKE_BINARY_DIR}")

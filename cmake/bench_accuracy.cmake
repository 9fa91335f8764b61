# SPDX-License-Identifier: MIT
# The accuracy scenarios and the benchmarks' helpers: a small library shared
# by bench/accuracy (tables), bench/latency, `usbtimesync bench` and the
# scenario ctest (assertions on SPEC §6's targets, in virtual time).
add_library(usbts_scenario STATIC ${CMAKE_SOURCE_DIR}/bench/scenario.c ${CMAKE_SOURCE_DIR}/bench/benchutil.c)
target_include_directories(usbts_scenario PUBLIC ${CMAKE_SOURCE_DIR}/bench)
target_link_libraries(usbts_scenario PUBLIC usbtimesync_static m)

add_executable(bench_accuracy ${CMAKE_SOURCE_DIR}/bench/accuracy.c)
set_target_properties(bench_accuracy PROPERTIES OUTPUT_NAME accuracy RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bench)
target_link_libraries(bench_accuracy PRIVATE usbts_scenario)
add_test(NAME bench_accuracy COMMAND bench_accuracy 3)
set_tests_properties(bench_accuracy PROPERTIES LABELS bench TIMEOUT 600)

add_executable(test_scenarios ${CMAKE_SOURCE_DIR}/tests/scenarios/test_scenarios.c ${CMAKE_SOURCE_DIR}/tests/testutil.c)
target_include_directories(test_scenarios PRIVATE ${CMAKE_SOURCE_DIR}/tests)
target_link_libraries(test_scenarios PRIVATE usbts_scenario)
add_test(NAME test_scenarios COMMAND test_scenarios)
set_tests_properties(test_scenarios PROPERTIES LABELS "unit;accuracy" TIMEOUT 600)

# The scenario soak (issue #16): a short fixed set in every `make check`;
# CI (.ci/stage-soak) runs 3000 scenarios from seed 16, `make soak` a minute's
# worth from a fresh seed.
add_executable(soak ${CMAKE_SOURCE_DIR}/tests/scenarios/soak.c)
set_target_properties(soak PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
target_link_libraries(soak PRIVATE usbts_scenario)
add_test(NAME soak_short COMMAND soak --count 60 --seed 1)
set_tests_properties(soak_short PROPERTIES LABELS "unit;accuracy" TIMEOUT 600)
# Soak scenarios that once failed (issue #16), replayed by seed: each names
# the failure class its fix closed.
#   4448059414: a 8 s stall across a 67 ppm host-clock slew made a new generation
#   4448059589: slow-read runs and NTP ramps: bursts phase-locked to the boundary, captures biased
#   814743757, 814743768: a reset under heavy preemption seen only after 100-200 ms (no clean pair of reads)
#   4448060625: a FLADJ step with no capture for 70 ms (heavy preemption): reads that contradict the fit
#     widen the bound (wrong frame numbers before)
#   4448059545: a 10 s stall with NTP ramps and slow reads: a long window bent across the gap swung past its
#     bound (wrong frames; closed by coarse captures scoring no window)
#   4448060516: a reset-halt noticed after the last query before the restart (harness: the recovery generation)
#   4448059745: slow-read runs latching at 88% of their bracket: the latch term from the fit's own read widths
#   4448060268: a second of slow reads latching at their start, NTP ramps: a coarse capture bounds the fit's drift
#   4448060838: coarse captures, latch at the end, NTP ramps: the model error's peak, not its latest value
#   4448060113: a 75 ppm host-clock step under 8% preemption, captures 60 ms apart: overdue captures widen the bound
#   4448060145: a reset during a run of 15 us reads: slow reads still count towards noticing it (50.7 ms before)
#   4448060304: a slew after the controller vanished (harness: frames of a vanished controller are not judged)
#   4448060850: a FLADJ step inside a run of 18 us reads: each coarse capture judged by the fit's own data, not
#     by the reach the previous one left unverified (wrong frame numbers before)
#   4448060177: reads latching at 93% of 11 us brackets while NTP ramps the host clock: the data's curvature
#   317718671, 105906209: a reset-halt noticed only as it ended: its microframe 0 begins when the controller
#     runs again, as late as the next probe
#   6297748071: slow reads of varying width: a run of coarse captures ends only at a much finer one
#   23068699: a 280 ppm host-clock step, then a 100 ms stall: a fine capture on the surprise's side confirms
#     the change (taken for a reset across the stall before)
#   69206338: a reset 1 microframe before a wrap under heavy preemption: bursts aim where the reads since the
#     newest capture put the moved boundaries (noticed after 117 ms before)
#   5248124353, 23068688: slow reads latching at one end of their bracket amid fine ones, NTP ramps: the model
#     error readers get weighs each capture by its precision
#   1051722536, 1056964654: slow-read captures most of a window, NTP ramps or wander: coarse against the spread
#     of the captures that carry the fit (a 16 us lag under a 15 us bound before)
#   92275573: a frame clock 1180 ppm from nominal, a capture 86 ms after a halt's restart: models without a fit
#     run at the last fit's period (wrong frame numbers at nominal)
#   1055916658: a reset that moved the boundaries 28 us under 99% preemption: chance late wake-ups far apart no
#     longer double the lead, and bursts halve the stretch only a jump explains (157 ms to a new generation before)
#   1052771750, 11534614: NTP ramps under heavy preemption or with 3.6 us reads: within a slew's reach the old
#     fit still aims (halving there restarted lines whose bound did not know the ramp)
#   1058013736: 4 us reads with slow runs latching at 96%, NTP ramps: the line lags the measured wander's
#     curvature (1.13% outside before)
#   2116027790: a 278 ppm host-clock step under 5% preemption and late wake-ups: the lead shrinks on bursts that
#     woke in time, not only on captures (stuck at 100 us, bursts preempted long before the boundary: 1.05%)
#   1059061822, 2146435360: a frame clock that walks or wanders, coarse reads, a stall: 5 s after it no fit
#     reaches back across it (the longest window's line ran 0.5-1.4 ppm off the clock: 2.38% and 1.87%)
foreach(seed 4448059414 4448059589 814743757 814743768 4448060625 4448059545 4448060516
        4448059745 4448060268 4448060838 4448060113 4448060145 4448060304 4448060850 4448060177 317718671
        105906209 6297748071 23068699 69206338 5248124353 23068688
        1051722536 1056964654 92275573 1055916658 1052771750 11534614 1058013736
        2116027790 1059061822 2146435360)
  add_test(NAME soak_seed_${seed} COMMAND soak --one ${seed})
  set_tests_properties(soak_seed_${seed} PROPERTIES LABELS "unit;accuracy" TIMEOUT 300)
endforeach()

# Each simulator option against what it promises; time slicing changes nothing.
add_executable(test_sim_options ${CMAKE_SOURCE_DIR}/tests/scenarios/test_sim_options.c ${CMAKE_SOURCE_DIR}/tests/testutil.c)
target_include_directories(test_sim_options PRIVATE ${CMAKE_SOURCE_DIR}/tests)
target_link_libraries(test_sim_options PRIVATE usbtimesync_static m)
add_test(NAME test_sim_options COMMAND test_sim_options)
set_tests_properties(test_sim_options PROPERTIES LABELS "unit;accuracy" TIMEOUT 300)

"""Tests of link/hot_text.py: `python3 -m unittest discover -s link` (run by .ci/run's quick lane)."""
import unittest

import hot_text

CALLGRIND = """\
version: 1
ob=(1) /tmp/build/otlp-bridge
fn=(1) _ZN11otlp_bridge3run17h0123456789abcdefE
cfn=(2) _ZN5alloc7raw_vec19RawVec$LT$T$C$A$GT$8grow_one17hfedcba9876543210E
calls=1 0
cob=(2) /usr/lib/x86_64-linux-gnu/libc.so.6
cfn=(3) malloc
calls=1 0
fn=(2)
ob=(2)
fn=(3)
ob=(1)
fn=(4) _RNvMs0_NtNtNtNtCsjrHSEGnQ3l9_3std3sys4sync4once5futexNtB5_4Once4call'2
fn=(5) 0x00000000002b2e30
fn=(6) (below main)
"""


class Functions(unittest.TestCase):
    def test_the_functions_of_the_named_object_that_ran_callers_and_callees(self):
        ran = hot_text.functions(CALLGRIND.splitlines(), "otlp-bridge")
        self.assertIn("_ZN11otlp_bridge3run17h0123456789abcdefE", ran)
        self.assertIn("_ZN5alloc7raw_vec19RawVec$LT$T$C$A$GT$8grow_one17hfedcba9876543210E", ran)
        self.assertIn("_RNvMs0_NtNtNtNtCsjrHSEGnQ3l9_3std3sys4sync4once5futexNtB5_4Once4call'2", ran)

    def test_another_objects_functions_are_left_out(self):
        self.assertNotIn("malloc", hot_text.functions(CALLGRIND.splitlines(), "otlp-bridge"))
        self.assertEqual(hot_text.functions(CALLGRIND.splitlines(), "other"), set())


class Pattern(unittest.TestCase):
    def test_a_legacy_hash_is_a_wildcard(self):
        self.assertEqual(
            hot_text.pattern("_ZN11otlp_bridge3run17h0123456789abcdefE"), ".text*._ZN11otlp_bridge3run17h*E"
        )

    def test_a_v0_crate_disambiguator_is_a_wildcard_and_a_recursion_mark_is_dropped(self):
        self.assertEqual(
            hot_text.pattern("_RNvMs0_NtNtNtNtCsjrHSEGnQ3l9_3std3sys4sync4once5futexNtB5_4Once4call'2"),
            ".text*._RNvMs0_NtNtNtNtCs*_3std3sys4sync4once5futexNtB5_4Once4call",
        )

    def test_a_c_function_keeps_its_name(self):
        self.assertEqual(hot_text.pattern("ZSTD_compressStream2"), ".text*.ZSTD_compressStream2")

    def test_what_is_not_a_function_gives_no_pattern(self):
        for name in ("0x00000000002b2e30", "(below main)", "", "a b", "x*y"):
            self.assertIsNone(hot_text.pattern(name), name)


class Script(unittest.TestCase):
    def test_one_output_section_inserted_before_text_in_a_stable_order(self):
        text = hot_text.script({".text*.b", ".text*.a"})
        self.assertIn("INSERT BEFORE .text;", text)
        self.assertLess(text.index("*(.text*.a)"), text.index("*(.text*.b)"))
        self.assertEqual(text.count(".text.hot_idle :"), 1)

    def test_the_checked_in_script_is_what_the_generator_writes(self):
        # Every line of link/hot-text.ld is either the generator's frame or one pattern it could have written.
        import os

        path = os.path.join(os.path.dirname(__file__), "hot-text.ld")
        with open(path) as f:
            lines = f.read().splitlines()
        patterns = {line.strip()[2:-1] for line in lines if line.startswith("    *(")}
        self.assertGreater(len(patterns), 100)
        self.assertEqual("\n".join(lines) + "\n", hot_text.script(patterns))
        for p in patterns:
            self.assertTrue(p.startswith(".text*."), p)
            self.assertNotRegex(p, r"17h[0-9a-f]{16}E", "a hash left in a pattern")


if __name__ == "__main__":
    unittest.main()

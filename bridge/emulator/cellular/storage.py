"""The module's message memories ("SM" on the SIM, "ME" in flash, "SR" for status
reports) with their capacity and the index numbering the firmware uses (the
manual says from 0; firmware differs, so the first index is a setting)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

STAT_UNREAD, STAT_READ, STAT_UNSENT, STAT_SENT, STAT_ALL = 0, 1, 2, 3, 4
MEMORIES = ("ME", "MT", "SM", "SR")
RECEIVE_MEMORIES = ("ME", "SM")


@dataclass
class Stored:
    stat: int
    pdu: bytes  # SMSC field and TPDU

    @property
    def tpdu_length(self) -> int:
        return len(self.pdu) - 1 - self.pdu[0]


class Memory:
    """One memory: index -> message, at most `capacity` of them."""

    def __init__(self, name: str, capacity: int, first_index: int) -> None:
        self.name = name
        self.capacity = capacity
        self.first_index = first_index
        self.slots: dict[int, Stored] = {}
        self.full_fault = False  # storage full on demand (+CMS ERROR: 322)

    @property
    def used(self) -> int:
        return self.capacity if self.full_fault else len(self.slots)

    def valid(self, index: int) -> bool:
        return self.first_index <= index < self.first_index + self.capacity

    def store(self, message: Stored) -> int | None:
        """The index it went to; None when the memory is full."""
        if self.full_fault:
            return None
        for index in range(self.first_index, self.first_index + self.capacity):
            if index not in self.slots:
                self.slots[index] = message
                return index
        return None


class Storage:
    """All memories and the AT+CPMS choice of <mem1> (read/delete), <mem2>
    (write), <mem3> (where received messages go)."""

    def __init__(self, capacity: int, first_index: int) -> None:
        self.lock = threading.RLock()
        flash = Memory("ME", capacity, first_index)
        self.memories = {
            "ME": flash,
            "MT": flash,
            "SM": Memory("SM", capacity, first_index),
            "SR": Memory("SR", capacity, first_index),
        }
        self.mem1 = self.mem2 = self.mem3 = "SM"

    def reset_choice(self) -> None:
        self.mem1 = self.mem2 = self.mem3 = "SM"

    def read_memory(self) -> Memory:
        return self.memories[self.mem1]

    def receive_memory(self) -> Memory:
        return self.memories[self.mem3]

    def set_full(self, full: bool) -> None:
        for memory in self.memories.values():
            memory.full_fault = full

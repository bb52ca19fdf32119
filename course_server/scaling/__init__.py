"""Lesson 07: the chat's backend, in this process or shared by every process through Redis."""
